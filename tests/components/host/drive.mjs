// Drive the host page and the Notes component in headless Chromium (playwright-core,
// Debian's /usr/bin/chromium: no browser download). Run by tests/components/test_browser.py:
//
//   node drive.mjs '<json: {deps, chromium, hostUrl, artifacts, timeoutMs}>'
//
// It talks to the test in JSON lines: each step ends with one line on stdout,
// `{"step": …, …what it saw}`; where the test has work to do between steps
// (read the database, change the note as another session) it waits for one line
// on stdin. Every wait is on a condition with a timeout, never a sleep. Any
// failure ends with `{"step": "failed", "error": …}`, a screenshot and exit 1.
import { createRequire } from "node:module";
import path from "node:path";
import readline from "node:readline";

const config = JSON.parse(process.argv[2]);
const { chromium } = createRequire(path.join(config.deps, "..", "package.json"))("playwright-core");
const timeout = config.timeoutMs;

const stdin = readline.createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

function say(step, fields = {}) {
  process.stdout.write(`${JSON.stringify({ step, ...fields })}\n`);
}

async function proceed() {
  const { value, done } = await lines.next();
  if (done || value.trim() !== "go") throw new Error(`the test said ${done ? "nothing" : value}`);
}

const browser = await chromium.launch({ executablePath: config.chromium, headless: true, timeout });
const page = await browser.newPage({ viewport: { width: 960, height: 620 }, colorScheme: "light" });
page.setDefaultTimeout(timeout);

// What the page does that the test judges: every request's URL, uncaught errors, console errors.
const requests = [];
const pageErrors = [];
const consoleErrors = [];
page.on("request", (request) => requests.push(request.url()));
page.on("pageerror", (error) => pageErrors.push(String(error)));
page.on("console", (message) => {
  if (message.type() === "error") consoleErrors.push(message.text());
});
const seen = () => ({ requests, pageErrors, consoleErrors });

async function host() {
  return page.evaluate(() => {
    const { setTheme: _, ...record } = window.__host;
    return JSON.parse(JSON.stringify(record));
  });
}

async function shot(name) {
  const file = path.join(config.artifacts, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// The view: the sandbox proxy's frame, then the view's own (srcdoc) frame inside it.
const view = page.frameLocator("[data-testid=view-frame]").frameLocator("[data-testid=view]");
const app = view.locator("[data-testid=notes-app]");
const at = (testid) => view.locator(`[data-testid=${testid}]`);

async function settled(phase, version) {
  // The component at rest in `phase`, showing `version` of the open note.
  await view
    .locator(`[data-testid=notes-app][data-phase=${phase}][data-note-version="${version}"]`)
    .waitFor({ state: "visible" });
}

async function state() {
  return {
    id: await app.getAttribute("data-note-id"),
    version: await app.getAttribute("data-note-version"),
    phase: await app.getAttribute("data-phase"),
    status: await at("status").textContent(),
    statusKind: await at("status").getAttribute("data-kind"),
    title: await at("note-title").inputValue(),
    body: await at("note-body").inputValue(),
    theme: await view.locator("html").getAttribute("data-theme"),
  };
}

try {
  await page.goto(config.hostUrl);
  await page.waitForFunction(() => ["rendered", "failed"].includes(window.__host?.phase));
  const first = await host();
  if (first.phase === "failed") throw new Error(`the host failed: ${first.error}`);
  await settled("ready", "1");
  say("rendered", { host: first, view: await state(), shot: await shot("1-rendered"), ...seen() });

  // The user edits the note in the component and saves it.
  await at("note-title").fill(config.edit.title);
  await at("note-body").fill(config.edit.body);
  await at("save").click();
  await settled("ready", "2");
  await view.locator("[data-testid=status][data-kind=saved]").waitFor();
  say("saved", { host: await host(), view: await state(), shot: await shot("2-saved") });

  // The test changes the note through another session, then the user edits again.
  await proceed();
  await at("note-body").fill(config.secondEdit.body);
  await at("save").click();
  // The conflict, once the follow-up notes_get has brought the stored version.
  await settled("conflict", String(config.conflictVersion));
  await view.locator("[data-testid=status][data-kind=conflict]").waitFor();
  const conflict = {
    theirsTitle: await at("theirs-title").textContent(),
    theirsBody: await at("theirs-body").textContent(),
    mineTitle: await at("mine-title").textContent(),
    mineBody: await at("mine-body").textContent(),
    who: await at("conflict-who").textContent(),
  };
  say("conflict", { host: await host(), view: await state(), conflict, shot: await shot("3-conflict") });

  // The user keeps their edit: a save on the version the refresh brought.
  await at("resave").click();
  await settled("ready", String(config.conflictVersion + 1));
  await view.locator("[data-testid=status][data-kind=saved]").waitFor();
  const resaved = await state();

  // The host turns dark; the component follows its host context.
  await page.evaluate(() => window.__host.setTheme("dark"));
  await view.locator("html[data-theme=dark]").waitFor({ state: "attached" });
  say("resaved", {
    host: await host(),
    view: resaved,
    dark: await state(),
    shot: await shot("4-dark"),
    ...seen(),
  });
  await proceed();
} catch (error) {
  let file = null;
  try {
    file = await shot("failed");
  } catch {
    // no page to take
  }
  let record = null;
  try {
    record = await host();
  } catch {
    // no host to read
  }
  say("failed", { error: String(error?.stack ?? error), shot: file, host: record, ...seen() });
  process.exitCode = 1;
} finally {
  stdin.close();
  await browser.close();
}
