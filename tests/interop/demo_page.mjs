// The demo page (examples/demo/index.html) in a real browser, for `examples/demo.sh --browser`:
// Debian's chromium, headless, driven by npm's playwright-core. Opens URL (the page with its
// #ws=...&token=... fragment), prints "ready" on stdout once the page says it is logged in, then
// "shown <text>" once a notification containing TEXT is on the page, and stays until SIGTERM or
// SIGINT (so the demo can stop it with everything else). Failures (no chromium, a script error on
// the page, a close code, nothing within the deadlines) go to stderr and exit 1.
// Usage: node demo_page.mjs URL TEXT   (PIPEKIT_CHROMIUM: another chromium)
import fs from 'node:fs';

const [url, text] = process.argv.slice(2);
const chromiumPath = process.env.PIPEKIT_CHROMIUM || '/usr/bin/chromium';
let browserPid = null;
const killBrowser = () => {
  // playwright starts chromium as its own process group: end all of it (renderers, zygote).
  if (browserPid) try { process.kill(-browserPid, 'SIGKILL'); } catch { /* already gone */ }
  browserPid = null;
};
process.on('exit', killBrowser);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(0));
const die = (msg) => {
  process.stderr.write(`demo_page: ${msg}\n`);
  process.exit(1);
};

if (!url || !text) die('usage: node demo_page.mjs URL TEXT');
if (!fs.existsSync(chromiumPath)) {
  die(`no chromium at ${chromiumPath}: install Debian's chromium (make -f Makefile.dist deps), or set PIPEKIT_CHROMIUM`);
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  die(`playwright-core is not installed (make -f Makefile.dist deps-npm): ${e.message}`);
}
try {
  const server = await chromium.launchServer({
    executablePath: chromiumPath,
    headless: true,
    timeout: 60000,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-default-apps', '--disable-extensions', '--disable-sync', '--no-first-run',
      '--no-default-browser-check', '--mute-audio', '--password-store=basic', '--use-mock-keychain'],
  });
  browserPid = server.process().pid;
  const browser = await chromium.connect(server.wsEndpoint(), { timeout: 30000 });
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => die(`script error on the page: ${e.message}`));
  await page.goto(url, { timeout: 20000 });
  await page.waitForFunction(() => document.getElementById('status').textContent === 'logged in', null,
    { timeout: 20000, polling: 50 }).catch(async () => die(`the page did not log in: ${await page.textContent('#status')}`));
  console.log(`ready ${await page.textContent('#user')}`);
  await page.waitForFunction((t) => [...document.querySelectorAll('#messages .text')].some((e) => e.textContent.includes(t)),
    text, { timeout: 60000, polling: 50 }).catch(async () => die(`the page shows no "${text}": ${await page.textContent('#status')}`));
  const shown = await page.$$eval('#messages .text', (es) => es.map((e) => e.textContent));
  console.log(`shown ${shown.find((s) => s.includes(text))}`);
} catch (e) {
  die(e.message);
}
// Stays (with the browser) until the demo stops it.
setInterval(() => {}, 1 << 30);
