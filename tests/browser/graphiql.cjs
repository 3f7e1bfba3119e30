// Drives the router's GraphiQL page in Debian's Chromium (playwright-core, no downloaded
// browser) and reports each step as one JSON line on stdout:
//   node graphiql.cjs <page url> <authorization> <query> <subscription>
// The page's assets, pinned on unpkg, are served from this folder's node_modules (machines
// here have no internet). The test reads the lines and triggers the subscription's event.
const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require("playwright-core");

const [pageUrl, authorization, query, subscription] = process.argv.slice(2);
const modules = path.join(__dirname, "node_modules");
const report = (step) => console.log(JSON.stringify(step));
let shown = null; // the page whose response pane a failure report quotes
const TYPES = { ".js": "text/javascript", ".css": "text/css", ".map": "application/json" };

async function editorValue(page, selector) {
  return page.evaluate((s) => document.querySelector(s).CodeMirror.getValue(), selector);
}

async function setEditor(page, selector, text) {
  await page.evaluate(([s, t]) => document.querySelector(s).CodeMirror.setValue(t), [selector, text]);
}

async function run(page, text, until) {
  const editor = ".graphiql-query-editor .CodeMirror";
  await setEditor(page, editor, text);
  // GraphiQL reads the operation (and so whether it is a subscription, which goes over the
  // WebSocket) from the editor 100 ms after an edit: run only once it has.
  const kind = text.trim().startsWith("subscription") ? "subscription" : "query";
  await page.waitForFunction(
    ([s, k]) => (document.querySelector(s).CodeMirror.operations || []).some((o) => o.operation === k),
    [editor, kind],
  );
  await page.click(".graphiql-execute-button");
  shown = page;
  await page.waitForFunction(
    (marker) => {
      const editor = document.querySelector(".graphiql-response .CodeMirror");
      return editor && editor.CodeMirror.getValue().includes(marker);
    },
    until,
    { timeout: 60000 },
  );
  return JSON.parse(await editorValue(page, ".graphiql-response .CodeMirror"));
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  try {
    const page = await browser.newPage();
    page.on("pageerror", (error) => report({ step: "page error", message: String(error) }));
    await page.route("https://unpkg.com/**", (route) => {
      // /graphiql@3.8.3/graphiql.min.js -> node_modules/graphiql/graphiql.min.js
      const found = new URL(route.request().url()).pathname.match(/^\/([^@/]+)@[^/]+\/(.+)$/);
      const file = found && path.join(modules, found[1], found[2]);
      if (!file || !fs.existsSync(file)) return route.fulfill({ status: 404, body: "" });
      const type = TYPES[path.extname(file)] || "application/octet-stream";
      return route.fulfill({ status: 200, contentType: type, body: fs.readFileSync(file) });
    });
    const introspection = page.waitForResponse(
      (r) => r.request().method() === "POST" && (r.request().postData() || "").includes("__schema"),
      { timeout: 60000 },
    );
    await page.goto(pageUrl);
    const schema = await (await introspection).json();
    report({ step: "schema", types: schema.data.__schema.types.map((t) => t.name) });
    await page.waitForSelector(".graphiql-query-editor .CodeMirror");
    // The headers editor: the signed-in caller's token, for queries and subscriptions alike.
    await page.getByRole("button", { name: "Headers" }).click();
    const headers = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror";
    await setEditor(page, headers, JSON.stringify({ Authorization: authorization }));
    report({ step: "query", result: await run(page, query, '"data"') });
    await setEditor(page, ".graphiql-response .CodeMirror", "");
    const subscribed = run(page, subscription, '"data"');
    report({ step: "subscribed" });
    report({ step: "event", result: await subscribed });
  } catch (error) {
    const response = shown
      ? await editorValue(shown, ".graphiql-response .CodeMirror").catch(() => "")
      : "";
    report({ step: "failed", message: String((error && error.stack) || error), response });
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})().catch((error) => {
  report({ step: "failed", message: String((error && error.stack) || error) });
  process.exit(1);
});
