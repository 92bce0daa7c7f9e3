// The component's DOM: the elements of index.html, found once, and how state
// shows in them. Every element the browser test drives has a data-testid.
import { ago, type StoredNote } from "./results";

function el<T extends HTMLElement>(testid: string): T {
  const found = document.querySelector<T>(`[data-testid="${testid}"]`);
  if (!found) throw new Error(`index.html has no [data-testid="${testid}"]`);
  return found;
}

export const dom = {
  app: el<HTMLElement>("notes-app"),
  status: el<HTMLElement>("status"),
  list: el<HTMLUListElement>("note-list"),
  newNote: el<HTMLButtonElement>("new-note"),
  more: el<HTMLButtonElement>("more"),
  title: el<HTMLInputElement>("note-title"),
  body: el<HTMLTextAreaElement>("note-body"),
  id: el<HTMLElement>("note-id"),
  version: el<HTMLElement>("note-version"),
  updated: el<HTMLElement>("note-updated"),
  revert: el<HTMLButtonElement>("revert"),
  save: el<HTMLButtonElement>("save"),
  notice: el<HTMLElement>("notice"),
  tip: el<HTMLElement>("tip"),
  conflict: el<HTMLElement>("conflict"),
  conflictWho: el<HTMLElement>("conflict-who"),
  theirsTitle: el<HTMLElement>("theirs-title"),
  theirsBody: el<HTMLElement>("theirs-body"),
  mineTitle: el<HTMLElement>("mine-title"),
  mineBody: el<HTMLElement>("mine-body"),
  takeTheirs: el<HTMLButtonElement>("take-theirs"),
  resave: el<HTMLButtonElement>("resave"),
};

export type StatusKind = "idle" | "busy" | "saved" | "error" | "conflict";

export function showStatus(kind: StatusKind, text: string): void {
  dom.status.dataset.kind = kind;
  dom.status.textContent = text;
  dom.status.title = text;
}

export function showList(notes: StoredNote[], openId: string | null, hasMore: boolean): void {
  const items = notes.map((note) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.testid = "note-item";
    button.dataset.id = note.id;
    button.setAttribute("aria-current", String(note.id === openId));
    const title = document.createElement("span");
    title.className = "item-title";
    title.textContent = note.data.title || "Untitled";
    const sub = document.createElement("span");
    sub.className = "item-sub";
    sub.textContent = [`v${note.version}`, ago(note.updated_at)].filter(Boolean).join(" · ");
    button.append(title, sub);
    li.append(button);
    return li;
  });
  dom.list.replaceChildren(...items);
  dom.more.hidden = !hasMore;
}

export interface EditorView {
  note: StoredNote | null;
  title: string;
  body: string;
  dirty: boolean;
  busy: boolean;
  editable: boolean;
  /** A conflict is shown: its own buttons save or discard, not the editor's. */
  conflict: boolean;
}

export function showEditor(view: EditorView): void {
  // Only write the fields when they differ: rewriting moves the caret while typing.
  if (dom.title.value !== view.title) dom.title.value = view.title;
  if (dom.body.value !== view.body) dom.body.value = view.body;
  dom.title.disabled = dom.body.disabled = !view.editable;
  dom.id.textContent = view.note ? view.note.id : view.editable ? "new note" : "";
  dom.id.title = dom.id.textContent;
  dom.version.textContent = view.note ? String(view.note.version) : "–";
  dom.updated.textContent = view.note?.updated_at ? `updated ${ago(view.note.updated_at)}` : "";
  dom.app.dataset.noteId = view.note?.id ?? "";
  dom.app.dataset.noteVersion = view.note ? String(view.note.version) : "";
  const idle = !view.busy && !view.conflict;
  dom.save.disabled = !idle || !view.editable || !view.dirty || view.title.trim() === "";
  dom.revert.disabled = !idle || !view.dirty;
}

export interface ConflictView {
  theirs: StoredNote | null;
  mine: { title: string; body: string };
  changedBy?: string;
  busy: boolean;
}

function cell(target: HTMLElement, text: string, changed: boolean): void {
  target.textContent = text === "" ? "(empty)" : text;
  target.title = text;
  target.classList.toggle("changed", changed);
}

export function showConflict(view: ConflictView | null): void {
  dom.conflict.hidden = view === null;
  dom.tip.hidden = view !== null;
  dom.notice.dataset.kind = view ? "conflict" : "tip";
  if (!view) return;
  const theirs = view.theirs?.data;
  const theirTitle = theirs?.title ?? "";
  const theirBody = theirs?.body ?? "";
  const who = [
    view.changedBy ? `by ${view.changedBy}` : "",
    view.theirs?.updated_at ? ago(view.theirs.updated_at) : "",
    view.theirs ? `now version ${view.theirs.version}` : "",
  ].filter(Boolean);
  dom.conflictWho.textContent = who.length ? `Stored ${who.join(", ")}.` : "";
  cell(dom.theirsTitle, theirTitle, theirTitle !== view.mine.title);
  cell(dom.theirsBody, theirBody, theirBody !== view.mine.body);
  cell(dom.mineTitle, view.mine.title, theirTitle !== view.mine.title);
  cell(dom.mineBody, view.mine.body, theirBody !== view.mine.body);
  dom.resave.disabled = dom.takeTheirs.disabled = view.busy || view.theirs === null;
}
