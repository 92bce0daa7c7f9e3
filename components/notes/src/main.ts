// The Notes component: an MCP Apps view on the official App class.
//
// The host opens it for notes_list, notes_get and notes_save and hands it the
// tool's result; the user edits a note's title and body and saves through the
// host (notes_save with the version the edit started from). On a conflict it
// shows what is stored now beside the user's edit, reads the note again
// (notes_get) and lets the user save again on the new version. The open note's
// id and version go to the model (ui/update-model-context) and, in ChatGPT, to
// the widget state, the same ids the tools' structuredContent carries.
import {
  App,
  PostMessageTransport,
  applyDocumentTheme,
  applyHostFonts,
  applyHostStyleVariables,
  type McpUiHostContext,
} from "@modelcontextprotocol/ext-apps";

import {
  COLLECTION,
  TOOLS,
  readResult,
  withEdit,
  type Outcome,
  type StoredNote,
  type ToolResultLike,
} from "./results";
import { dom, showConflict, showEditor, showList, showStatus, type StatusKind } from "./view";

interface Edit {
  title: string;
  body: string;
}

interface Conflict {
  theirs: StoredNote | null;
  mine: Edit;
  changedBy?: string;
}

const state = {
  notes: new Map<string, StoredNote>(),
  nextCursor: null as string | null,
  /** The open note's id; null with `creating` for a note not saved yet. */
  openId: null as string | null,
  creating: false,
  draft: { title: "", body: "" } as Edit,
  conflict: null as Conflict | null,
  busy: false,
  /** The arguments of the host's tool call, until its result arrives. */
  toolInput: null as Record<string, unknown> | null,
  status: { kind: "idle" as StatusKind, text: "Waiting for notes…" },
};

const app = new App({ name: "stowage-notes", version: "1.0.0" }, {}, { autoResize: true });

function openNote(): StoredNote | null {
  return state.openId ? (state.notes.get(state.openId) ?? null) : null;
}

function editOf(note: StoredNote | null): Edit {
  return { title: note?.data.title ?? "", body: note?.data.body ?? "" };
}

function dirty(): boolean {
  const base = editOf(openNote());
  return state.draft.title !== base.title || state.draft.body !== base.body;
}

function setStatus(kind: StatusKind, text: string): void {
  state.status = { kind, text };
}

function render(): void {
  const note = openNote();
  const editable = note !== null || state.creating;
  showStatus(state.status.kind, state.status.text);
  showList([...state.notes.values()], state.openId, state.nextCursor !== null);
  showEditor({
    note,
    ...state.draft,
    dirty: dirty(),
    busy: state.busy,
    editable,
    conflict: state.conflict !== null,
  });
  // "Your edit" is what the editor holds now, as saving again would send it.
  showConflict(state.conflict && { ...state.conflict, mine: state.draft, busy: state.busy });
  dom.newNote.disabled = dom.more.disabled = state.busy;
  dom.app.dataset.phase = state.busy
    ? "busy"
    : state.conflict
      ? "conflict"
      : editable || state.notes.size
        ? "ready"
        : "waiting";
}

// -- what the model and the host keep ------------------------------------------

let lastContext = "";

/** Tell the model which note is open (id, version), as structured content and text. */
async function tellModel(): Promise<void> {
  const note = openNote();
  const open = note ? { id: note.id, version: note.version, title: note.data.title } : null;
  const context = {
    collection: COLLECTION,
    open,
    unsaved_changes: dirty(),
    conflict: state.conflict !== null,
  };
  const serialised = JSON.stringify(context);
  if (serialised === lastContext) return;
  lastContext = serialised;
  const text = open
    ? `The user has the note "${open.title}" open in the Notes component ` +
      `(collection ${COLLECTION}, id ${open.id}, version ${open.version})` +
      (context.unsaved_changes ? ", with unsaved edits." : ".") +
      (context.conflict ? " It was changed elsewhere; the user is reviewing the change." : "")
    : state.creating
      ? "The user is writing a new note in the Notes component."
      : "The Notes component shows the user's notes; none is open.";
  // ChatGPT's widget state (Apps SDK), where the host offers it.
  const openai = (window as { openai?: { setWidgetState?: (s: unknown) => unknown } }).openai;
  openai?.setWidgetState?.(context);
  try {
    await app.updateModelContext({ content: [{ type: "text", text }], structuredContent: context });
  } catch {
    lastContext = ""; // not taken: try again with the next change
  }
}

// -- showing results ---------------------------------------------------------------

function remember(note: StoredNote): void {
  state.notes.set(note.id, note);
}

function open(note: StoredNote | null): void {
  state.openId = note?.id ?? null;
  state.creating = false;
  state.draft = editOf(note);
  state.conflict = null;
}

function inputEdit(): Edit | null {
  const data = state.toolInput?.data as { title?: unknown; body?: unknown } | undefined;
  if (!data || typeof data.title !== "string") return null;
  return { title: data.title, body: typeof data.body === "string" ? data.body : "" };
}

/** Show a result: the host's (the model's call) or one of our own calls. */
function show(outcome: Outcome, mine: Edit | null): void {
  switch (outcome.kind) {
    case "list": {
      for (const note of outcome.notes) remember(note);
      state.nextCursor = outcome.nextCursor;
      if (!openNote() && !state.creating) open(outcome.notes[0] ?? null);
      const count = state.notes.size;
      const extra = outcome.unreadable ? `, ${outcome.unreadable} unreadable` : "";
      setStatus("idle", count ? `${count} note${count === 1 ? "" : "s"}${extra}` : "No notes yet");
      if (!count && !state.creating) startNew();
      break;
    }
    case "one":
      remember(outcome.note);
      open(outcome.note);
      setStatus("saved", `${outcome.created ? "Created" : "Saved"} · version ${outcome.note.version}`);
      break;
    case "conflict":
      if (outcome.current) {
        remember(outcome.current);
        state.openId = outcome.current.id;
        state.creating = false;
      }
      state.conflict = { theirs: outcome.current, mine: mine ?? state.draft, changedBy: outcome.changedBy };
      state.draft = { ...state.conflict.mine };
      setStatus("conflict", "Changed elsewhere: reading the stored note…");
      break;
    case "error":
      setStatus("error", outcome.hint ? `${outcome.message} ${outcome.hint}` : outcome.message);
      break;
    case "other":
      break;
  }
}

// -- calls through the host -----------------------------------------------------------

async function call(name: string, args: Record<string, unknown>): Promise<Outcome> {
  try {
    const result = await app.callServerTool({ name, arguments: args });
    return readResult(result as ToolResultLike);
  } catch (e) {
    return { kind: "error", code: "transport", message: `${name} failed: ${String(e)}` };
  }
}

async function busy<T>(text: string, work: () => Promise<T>): Promise<T> {
  state.busy = true;
  setStatus("busy", text);
  render();
  try {
    return await work();
  } finally {
    state.busy = false;
    render();
    void tellModel();
  }
}

/** Read the open note again after a conflict; the user's edit stays in the editor. */
async function refresh(id: string): Promise<void> {
  const outcome = await call(TOOLS.get, { id });
  if (outcome.kind !== "one" || !state.conflict) {
    show(outcome, null);
    return;
  }
  remember(outcome.note);
  state.conflict.theirs = outcome.note;
  setStatus(
    "conflict",
    `Changed elsewhere: now version ${outcome.note.version}. Keep yours or use the stored note.`,
  );
}

async function save(): Promise<void> {
  const note = openNote();
  const edit = { ...state.draft };
  const args: Record<string, unknown> = { data: withEdit(note?.data, edit) };
  if (note) {
    args.id = note.id;
    args.expected_version = note.version;
  }
  await busy("Saving…", async () => {
    const outcome = await call(TOOLS.save, args);
    show(outcome, edit);
    if (outcome.kind === "conflict" && outcome.current) await refresh(outcome.current.id);
  });
}

async function loadMore(): Promise<void> {
  const cursor = state.nextCursor;
  if (!cursor) return;
  await busy("Loading…", async () => show(await call(TOOLS.list, { cursor }), null));
}

function startNew(): void {
  state.openId = null;
  state.creating = true;
  state.draft = { title: "", body: "" };
  state.conflict = null;
}

// -- user input ---------------------------------------------------------------------------

dom.title.addEventListener("input", () => {
  state.draft.title = dom.title.value;
  render();
  void tellModel();
});
dom.body.addEventListener("input", () => {
  state.draft.body = dom.body.value;
  render();
  void tellModel();
});
dom.save.addEventListener("click", () => void save());
dom.resave.addEventListener("click", () => void save());
dom.revert.addEventListener("click", () => {
  state.draft = editOf(openNote());
  render();
  void tellModel();
});
dom.takeTheirs.addEventListener("click", () => {
  open(openNote());
  setStatus("idle", "Showing the stored note");
  render();
  void tellModel();
});
dom.newNote.addEventListener("click", () => {
  startNew();
  setStatus("idle", "New note");
  render();
  dom.title.focus();
  void tellModel();
});
dom.more.addEventListener("click", () => void loadMore());
dom.list.addEventListener("click", (event) => {
  const item = (event.target as HTMLElement).closest<HTMLElement>("[data-testid=note-item]");
  const note = item?.dataset.id ? state.notes.get(item.dataset.id) : undefined;
  if (!note || state.busy) return;
  open(note);
  setStatus("idle", `Opened “${note.data.title}”`);
  render();
  void tellModel();
});

// -- the host -------------------------------------------------------------------------------

function applyContext(context: Partial<McpUiHostContext> | undefined): void {
  if (!context) return;
  if (context.theme) applyDocumentTheme(context.theme);
  if (context.styles?.variables) applyHostStyleVariables(context.styles.variables);
  if (context.styles?.css?.fonts) applyHostFonts(context.styles.css.fonts);
}

app.ontoolinput = (params) => {
  state.toolInput = (params.arguments as Record<string, unknown> | undefined) ?? null;
  setStatus("busy", "Waiting for the result…");
  render();
};

app.ontoolresult = (result) => {
  const mine = inputEdit();
  const outcome = readResult(result as ToolResultLike);
  show(outcome, mine);
  state.toolInput = null;
  render();
  if (outcome.kind === "conflict" && outcome.current) {
    const id = outcome.current.id;
    void busy("Reading the stored note…", () => refresh(id));
  } else {
    void tellModel();
  }
};

app.ontoolcancelled = () => {
  setStatus("error", "The tool call was cancelled.");
  render();
};

app.onhostcontextchanged = (context) => applyContext(context);

app.onteardown = async () => ({});

render();
app.connect(new PostMessageTransport(window.parent, window.parent)).then(
  () => applyContext(app.getHostContext()),
  (e: unknown) => {
    setStatus("error", `Cannot reach the host: ${String(e)}`);
    render();
  },
);
