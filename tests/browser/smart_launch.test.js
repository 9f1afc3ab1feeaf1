// A real SMART client library (npm's fhirclient) completes a standalone launch against
// Concerto in headless Chromium: the authorization request with PKCE, Concerto's sign-in page,
// the code exchange at the token endpoint (a cross-origin request), then reads with the token,
// limited to the patient of the launch context by its patient/ scopes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  cleanup, cli, launchBrowser, root, screenshot, serveStatic, startConcerto, tempDir,
  writeFileSync,
} from './harness.js';

const PASSWORD = 'violet-harbor-lantern-42';
let dir, concerto, app, browser;

before(async () => {
  dir = tempDir();
  const db = join(dir, 'concerto.db');
  const data = join(dir, 'patients.ndjson');
  writeFileSync(data, [
    { resourceType: 'Patient', id: 'ann', name: [{ family: 'Ashworth', given: ['Ann'] }], birthDate: '1941-03-02' },
    { resourceType: 'Patient', id: 'bob', name: [{ family: 'Brennan', given: ['Bob'] }], birthDate: '1950-07-14' },
    { resourceType: 'Observation', id: 'ann-bp', status: 'final', code: { text: 'blood pressure' }, subject: { reference: 'Patient/ann' } },
    { resourceType: 'Observation', id: 'bob-bp', status: 'final', code: { text: 'blood pressure' }, subject: { reference: 'Patient/bob' } },
  ].map((r) => JSON.stringify(r)).join('\n') + '\n');
  cli(['import', '--db', db, data]);
  cli(['user', 'add', '--db', db, '--username', 'ann', '--role', 'patient', '--patient', 'ann',
       '--password-stdin'], PASSWORD + '\n');
  const nm = join(root, 'tests/browser/node_modules/fhirclient/build');
  app = await serveStatic({
    '/launch.html': join(root, 'tests/browser/app/launch.html'),
    '/app.html': join(root, 'tests/browser/app/app.html'),
    '/fhir-client.js': join(nm, 'fhir-client.js'),
  });
  cli(['client', 'add', '--db', db, '--client-id', 'test-app', '--public', '--name', 'Test app',
       '--scopes', 'launch/patient openid fhirUser offline_access patient/*.rs',
       '--redirect-uri', `${app.origin}/app.html`]);
  concerto = await startConcerto(db);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  app?.close();
  if (concerto) {
    const code = await concerto.stop();
    assert.equal(code, 0, `concerto serve exited ${code}: ${concerto.stderr()}`);
  }
  if (dir) cleanup(dir);
});

test('fhirclient completes a standalone patient launch in Chromium', async () => {
  const page = await browser.newPage();
  const scope = 'launch/patient openid fhirUser offline_access patient/*.rs';
  const launch = `${app.origin}/launch.html?iss=${encodeURIComponent(concerto.fhir)}` +
    `&client_id=test-app&scope=${encodeURIComponent(scope)}`;
  await page.goto(launch);

  // fhirclient reads the smart-configuration and sends the browser to Concerto's sign-in page
  await page.waitForURL((u) => u.href.startsWith(`${concerto.base}/oauth2/`), { timeout: 20000 });
  await page.getByLabel(/user ?name/i).fill('ann');
  await page.getByLabel(/password/i).fill(PASSWORD);
  await screenshot(page, 'smart-launch-sign-in');
  await page.getByRole('button', { name: /sign in/i }).click();

  // back in the app, which exchanges the code and reads
  await page.waitForURL((u) => u.href.startsWith(`${app.origin}/app.html`), { timeout: 20000 });
  await page.waitForSelector('body[data-done]', { timeout: 20000 });
  await screenshot(page, 'smart-launch-app');
  assert.equal(await page.getAttribute('body', 'data-done'), 'ok',
               await page.textContent('#status'));
  const result = JSON.parse(await page.textContent('#result'));
  assert.equal(result.patientId, 'ann');
  assert.equal(result.name, 'Ashworth');
  // her Observation only: Bob's is outside the launch context
  assert.equal(result.observations, 1);
  assert.match(result.fhirUser, /^Patient\/ann$/);
  assert.ok(result.refresh, 'offline_access gives a refresh token');
  // another patient's record is not there for her (404: its id is not even confirmed)
  assert.equal(result.denied, '404');
  await page.close();
});
