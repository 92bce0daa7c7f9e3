// Reading Stowage's tool results: no DOM, no I/O here.
//
// The gateway's notes tools answer with structuredContent that follows their
// output schema (gateway/surface/_tool_table.py): `notes_get`/`notes_save` give
// `{object, …}`, `notes_list` gives `{objects, next_cursor, unreadable?}`. A
// domain outcome (conflict, not found, validation, quota…) is a result with
// `isError` and no structuredContent; its details are under
// `_meta["stowage.dev/error"]` (and, the same JSON, in the text content).

export const COLLECTION = "notes";
export const TOOLS = {
  list: "notes_list",
  get: "notes_get",
  save: "notes_save",
} as const;

/** Where a Stowage tool error carries its details (stowage.wire.TOOL_ERROR_META_KEY). */
export const ERROR_META_KEY = "stowage.dev/error";

export interface NoteData {
  title: string;
  body?: string;
  tags?: string[];
}

export interface StoredNote {
  collection: string;
  id: string;
  version: number;
  schema_version?: number;
  data: NoteData;
  created_at?: string;
  updated_at?: string;
  expires_at?: string | null;
  /** Who wrote the stored version, when the platform says (shared spaces). */
  updated_by?: string;
}

export type Outcome =
  | { kind: "list"; notes: StoredNote[]; nextCursor: string | null; unreadable: number }
  | { kind: "one"; note: StoredNote; created: boolean }
  | { kind: "conflict"; current: StoredNote | null; message: string; changedBy?: string }
  | { kind: "error"; code: string; message: string; hint?: string }
  | { kind: "other" };

/** The parts of a `tools/call` result this module reads. */
export interface ToolResultLike {
  isError?: boolean;
  structuredContent?: Record<string, unknown>;
  content?: Array<{ type: string; text?: string }>;
  _meta?: Record<string, unknown>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asNote(value: unknown): StoredNote | null {
  if (!isRecord(value)) return null;
  const { id, version, data } = value;
  if (typeof id !== "string" || typeof version !== "number" || !isRecord(data)) return null;
  return value as unknown as StoredNote;
}

/** A tool error's `{error, hint}`: from `_meta`, else from the JSON text. */
function errorDetails(result: ToolResultLike): Record<string, unknown> | null {
  const fromMeta = result._meta?.[ERROR_META_KEY];
  if (isRecord(fromMeta)) return fromMeta;
  const text = result.content?.find((block) => block.type === "text")?.text;
  if (!text) return null;
  try {
    const parsed: unknown = JSON.parse(text);
    return isRecord(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

/** What a notes tool's result says. */
export function readResult(result: ToolResultLike): Outcome {
  if (result.isError) {
    const details = errorDetails(result);
    const error = isRecord(details?.error) ? details.error : {};
    const code = typeof error.code === "string" ? error.code : "error";
    const message = typeof error.message === "string" ? error.message : "The tool call failed.";
    if (code === "conflict") {
      const current = asNote(error.current);
      const by = error.changed_by ?? current?.updated_by;
      return { kind: "conflict", current, message, changedBy: typeof by === "string" ? by : undefined };
    }
    const hint = typeof details?.hint === "string" ? details.hint : undefined;
    return { kind: "error", code, message, hint };
  }
  const content = result.structuredContent;
  if (!isRecord(content)) return { kind: "other" };
  const one = asNote(content.object);
  if (one) return { kind: "one", note: one, created: content.created === true };
  if (Array.isArray(content.objects)) {
    const notes = content.objects.map(asNote).filter((n): n is StoredNote => n !== null);
    const nextCursor = typeof content.next_cursor === "string" ? content.next_cursor : null;
    const unreadable = Array.isArray(content.unreadable) ? content.unreadable.length : 0;
    return { kind: "list", notes, nextCursor, unreadable };
  }
  return { kind: "other" };
}

/** A note's data with `title` and `body` from the editor and its other fields kept. */
export function withEdit(data: NoteData | undefined, edit: { title: string; body: string }): NoteData {
  const next: NoteData = { title: edit.title };
  if (edit.body !== "" || data?.body !== undefined) next.body = edit.body;
  if (data?.tags !== undefined) next.tags = data.tags;
  return next;
}

/** "3 minutes ago"-style wording of an RFC 3339 time, or "" when there is none. */
export function ago(when: string | undefined, now: number = Date.now()): string {
  if (!when) return "";
  const then = Date.parse(when);
  if (Number.isNaN(then)) return "";
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  return new Date(then).toLocaleDateString();
}
