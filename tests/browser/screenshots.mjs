// Regenerates the screenshots of docs/screenshots (shown in the README): a fresh demo
// is served and walked through an upgrade in Debian's chromium, as the browser test
// does, and each main page is captured at 1280 px.
//
// Run by docs/screenshots.sh; UPLIFT_BIN names the uplift binary, OUT the folder.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const BIN = process.env.UPLIFT_BIN ?? 'target/debug/uplift';
const OUT = process.env.OUT ?? 'docs/screenshots';
const dir = mkdtempSync(join(tmpdir(), 'uplift-shots-'));
mkdirSync(OUT, { recursive: true });

const server = spawn(BIN, ['demo', '--rows', '2000', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')],
  { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((resolve, reject) => {
  createInterface({ input: server.stdout }).on('line', (line) => {
    const m = line.match(/^Uplift is serving on (\S+)/);
    if (m) resolve(m[1]);
  });
  server.on('exit', (code) => reject(new Error(`the demo exited with ${code}`)));
});
const admin = readFileSync(join(dir, 'data', 'admin.token'), 'utf8').trim();
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });

async function tokenFor(user) {
  const r = await fetch(`${url}/api/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  return (await r.json()).token;
}

async function signedIn(token, path) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  await page.goto(`${url}${path}`);
  await page.getByLabel('API token').fill(token);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: false });
  console.log(`${OUT}/${name}.png`);
}

try {
  const a = await signedIn(admin, '/admin');
  await shot(a, '01-admin-center');
  await a.goto(`${url}/admin/environments/contoso/upgrade?plan=classic-to-modern&language=en&currency=USD`);
  await shot(a, '02-wizard-preview');
  for (const rate of await a.locator('input[name^="rate_"]').all()) {
    if ((await rate.inputValue()) === '') await rate.fill('1.1');
  }
  await Promise.all([a.waitForNavigation(), a.getByRole('button', { name: /Start step 1/ }).click()]);
  await a.waitForTimeout(300);
  await shot(a, '03-step1-live');
  await a.locator('#status', { hasText: 'step2 verifying' }).waitFor({ timeout: 120_000 });
  await a.getByRole('heading', { name: "Step 1's copy report" }).waitFor();
  await a.waitForTimeout(2000);
  await a.reload();
  await a.getByRole('heading', { name: "Step 1's copy report" }).scrollIntoViewIfNeeded();
  await shot(a, '04-copy-report');
  await a.getByRole('heading', { name: 'Step 2: the apps and flows' }).scrollIntoViewIfNeeded();
  await shot(a, '05-step2-dashboard');

  const m = await signedIn(await tokenFor('alice.maker@contoso.com'), '/maker');
  await m.getByRole('link', { name: 'Sales Hub' }).click();
  await m.getByRole('heading', { level: 1, name: 'Sales Hub' }).waitFor();
  await shot(m, '06-maker-item');
  await m.goto(`${url}/apps/contoso/Sales%20Hub/views/Contacts?copy=true`);
  await shot(m, '07-copy-in-player');

  await a.goto(`${url}/admin/environments/contoso/upgrade`);
  await a.getByLabel(/Complete although step 2's gate is not ready/).fill('screenshots');
  await a.getByRole('button', { name: 'Complete the upgrade' }).click();
  await a.locator('#status', { hasText: 'completed' }).waitFor({ timeout: 120_000 });
  await a.goto(`${url}/admin/environments/contoso/upgrade`);
  await a.getByRole('table', { name: /Each write pause/ }).scrollIntoViewIfNeeded();
  await shot(a, '08-step3-pause-figures');

  const u = await signedIn(await tokenFor('dave@contoso.com'), '/apps/contoso/Sales%20Hub/views/Contacts');
  await shot(u, '09-player-view');
  await u.getByRole('table', { name: /Contacts/ }).getByRole('row').nth(1).getByRole('link').click();
  await u.getByLabel('fullname_middle_name').waitFor();
  await shot(u, '10-player-form');
} finally {
  await browser.close();
  server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
