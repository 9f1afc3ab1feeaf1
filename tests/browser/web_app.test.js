// The coordinators' web app served by Concerto itself, in headless Chromium: sign-in through
// Concerto's own pages (a staff member enrols in TOTP on the way), the worklist, claiming and
// completing Tasks (checked on the server through the FHIR API), a 412 when a Task changed
// underneath, the keyboard, patient search, a Task's history and signing out.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import {
  cleanup, cli, launchBrowser, screenshot, startConcerto, tempDir, writeFileSync,
} from './harness.js';

const PASSWORD = 'amber-orchard-violin-73';
const SECRET = 'b'.repeat(40);
const SNOMED = 'http://snomed.info/sct';
const coordinatorRole = [{ coding: [{ system: SNOMED, code: '768820003', display: 'Care coordinator' }] }];

let dir, concerto, browser, page, apiToken;

function team(patient) {
  return {
    resourceType: 'CareTeam', id: `ct-${patient}`, status: 'active',
    subject: { reference: `Patient/${patient}` },
    participant: [{ role: coordinatorRole, member: { reference: 'Practitioner/p1' }, period: { start: '2020-01-01' } }],
  };
}

function task(id, patient, fields) {
  return { resourceType: 'Task', id, intent: 'order', for: { reference: `Patient/${patient}` }, ...fields };
}

const FIXTURES = [
  { resourceType: 'Practitioner', id: 'p1', name: [{ family: 'Coordinator', given: ['Casey'] }] },
  { resourceType: 'Practitioner', id: 'p2', name: [{ family: 'Nurse', given: ['Dana'] }] },
  { resourceType: 'Patient', id: 'ann', name: [{ family: 'Ashworth', given: ['Ann'] }], birthDate: '1941-03-02',
    identifier: [{ system: 'urn:example:mrn', value: 'MRN-1001' }] },
  { resourceType: 'Patient', id: 'bob', name: [{ family: 'Brennan', given: ['Bob'] }], birthDate: '1950-07-14',
    identifier: [{ system: 'urn:example:mrn', value: 'MRN-1002' }] },
  { resourceType: 'Patient', id: 'cy', name: [{ family: 'Cole', given: ['Cy'] }], birthDate: '1962-11-30' },
  team('ann'), team('bob'), team('cy'),
  { resourceType: 'RiskAssessment', id: 'ra-ann', status: 'final', subject: { reference: 'Patient/ann' },
    occurrenceDateTime: '2026-01-05', prediction: [{ probabilityDecimal: 0.82 }] },
  { resourceType: 'RiskAssessment', id: 'ra-bob', status: 'final', subject: { reference: 'Patient/bob' },
    occurrenceDateTime: '2026-01-05',
    prediction: [{ qualitativeRisk: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/risk-probability', code: 'low' }] } }] },
  { resourceType: 'Communication', id: 'call-ann', status: 'completed', subject: { reference: 'Patient/ann' },
    sent: '2026-03-01T15:00:00Z' },
  task('t1', 'ann', { status: 'requested', priority: 'urgent', owner: { reference: 'Practitioner/p1' },
    description: 'Call Ann about her new medication', restriction: { period: { end: '2020-01-01T12:00:00Z' } } }),
  task('t2', 'bob', { status: 'ready', priority: 'routine', owner: { reference: 'Practitioner/p1' },
    description: "Book Bob's follow-up visit", restriction: { period: { end: '2099-01-01T12:00:00Z' } } }),
  task('t3', 'cy', { status: 'requested', performerType: coordinatorRole,
    description: "Review Cy's discharge summary" }),
  task('t4', 'bob', { status: 'in-progress', owner: { reference: 'Practitioner/p1' },
    description: "Check Bob's blood pressure log", restriction: { period: { end: '2099-02-01T12:00:00Z' } } }),
];

// RFC 6238 with SHA-1, 30-second steps, 6 digits: what an authenticator app shows.
function totp(secret) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secret.replace(/=+$/, '').toUpperCase())
    bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1000000).padStart(6, '0');
}

async function api(path, init = {}) {
  const r = await fetch(`${concerto.fhir}/${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${apiToken}`, 'Content-Type': 'application/fhir+json', ...(init.headers ?? {}) },
  });
  const body = await r.json();
  assert.ok(r.ok, `${init.method ?? 'GET'} ${path}: ${r.status} ${JSON.stringify(body)}`);
  return body;
}

// Signs username in on Concerto's pages, where page is now; a staff member's first sign-in
// enrols in a second factor.
async function signInAs(p, username, shot) {
  await p.waitForURL((u) => u.pathname.startsWith('/oauth2/'), { timeout: 20000 });
  await p.getByLabel(/user ?name/i).fill(username);
  await p.getByLabel(/password/i).fill(PASSWORD);
  if (shot) await screenshot(p, shot);
  await p.getByRole('button', { name: /sign in/i }).click();
  const secret = (await p.locator('#totp-secret').textContent()).trim();
  await p.getByLabel(/code from your app/i).fill(totp(secret));
  await p.getByRole('button', { name: /confirm/i }).click();
  await p.getByRole('button', { name: /continue/i }).click();
}

function row(id) {
  return page.locator(`tr[data-task="${id}"]`);
}

before(async () => {
  dir = tempDir();
  const db = join(dir, 'concerto.db');
  const data = join(dir, 'fixtures.ndjson');
  writeFileSync(data, FIXTURES.map((r) => JSON.stringify(r)).join('\n') + '\n');
  cli(['import', '--db', db, data]);
  cli(['user', 'add', '--db', db, '--username', 'casey', '--role', 'coordinator', '--practitioner', 'p1',
       '--password-stdin'], PASSWORD + '\n');
  cli(['user', 'add', '--db', db, '--username', 'ada', '--role', 'admin', '--password-stdin'], PASSWORD + '\n');
  cli(['client', 'add', '--db', db, '--client-id', 'checker', '--secret-stdin', '--scopes', 'system/*.cruds'],
      SECRET + '\n');
  // access tokens of 63 s: the app refreshes each 3 s after it gets it (a minute ahead)
  concerto = await startConcerto(db, ['--token-ttl', '63']);
  const r = await fetch(`${concerto.base}/oauth2/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded',
               Authorization: `Basic ${Buffer.from(`checker:${SECRET}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/*.cruds' }),
  });
  apiToken = (await r.json()).access_token;
  assert.ok(apiToken);
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
});

after(async () => {
  await browser?.close();
  if (concerto) {
    const code = await concerto.stop();
    assert.equal(code, 0, `concerto serve exited ${code}: ${concerto.stderr()}`);
  }
  if (dir) cleanup(dir);
});

test('signs in through the sign-in pages and shows the worklist', async () => {
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`${concerto.base}/`);
  await signInAs(page, 'casey', 'web-sign-in');
  await page.waitForURL(`${concerto.base}/`, { timeout: 20000 });
  await page.getByRole('heading', { name: 'My worklist' }).waitFor({ timeout: 20000 });
  await row('t1').waitFor();
  // the buckets of $worklist, in order, each with its Tasks
  const headings = await page.locator('section.bucket h2').allTextContents();
  assert.deepEqual(headings.map((h) => h.replace(/\s*\d+$/, '')), ['Overdue', 'Upcoming', 'Unassigned']);
  assert.match(await page.locator('section.bucket').nth(0).textContent(), /Call Ann about her new medication/);
  assert.match(await page.locator('section.bucket').nth(2).textContent(), /Review Cy's discharge summary/);
  assert.match(await row('t1').textContent(), /Ann Ashworth/);
  assert.match(await row('t1').textContent(), /urgent/);
  assert.equal(await page.getByTestId('me').textContent(), 'Casey Coordinator');
  await screenshot(page, 'web-worklist');
  assert.deepEqual(errors, []);
});

test('refreshes its access token before it expires and goes on working', async () => {
  const request = await page.waitForRequest((r) => r.url().endsWith('/oauth2/token') &&
    (r.postData() ?? '').includes('grant_type=refresh_token'), { timeout: 20000 });
  const answer = await request.response();
  assert.equal(answer.status(), 200);
  const body = await answer.json();
  assert.ok(body.access_token && body.refresh_token, 'a new access token and a rotated refresh token');
  // the next refresh presents the rotated token (a used one would revoke everything)
  const next = await page.waitForRequest((r) => r.url().endsWith('/oauth2/token') &&
    (r.postData() ?? '').includes('grant_type=refresh_token'), { timeout: 20000 });
  assert.equal(new URLSearchParams(next.postData()).get('refresh_token'), body.refresh_token);
  assert.equal((await next.response()).status(), 200);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Patients' }).click();
  await page.locator('tr[data-patient="ann"]').waitFor({ timeout: 20000 });
  assert.equal(await page.title(), 'Patients – Concerto');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'My worklist' }).click();
  await row('t1').waitFor();
  assert.equal(await page.title(), 'My worklist – Concerto');
});

test('the worklist opens within a second once signed in', async () => {
  // the browser's sign-in session makes the authorization go through without the password
  const started = Date.now();
  await page.goto(`${concerto.base}/`);
  await row('t1').waitFor({ timeout: 20000 });
  const ms = Date.now() - started;
  console.log(`worklist shown ${ms} ms after navigation (sign-in redirect included)`);
  const assets = await page.evaluate(() => performance.getEntriesByType('navigation')[0].duration);
  console.log(`index.html and its assets loaded in ${Math.round(assets)} ms`);
  assert.ok(ms < 5000, `${ms} ms`);
  // a tablet in portrait: the rows stack, every action stays on screen
  await page.setViewportSize({ width: 768, height: 1024 });
  const box = await row('t1').getByRole('button', { name: /^reassign/i }).boundingBox();
  assert.ok(box && box.x + box.width <= 768, JSON.stringify(box));
  await screenshot(page, 'web-worklist-tablet');
  await page.setViewportSize({ width: 1280, height: 800 });
});

test('claims and completes a task, and the server has it', async () => {
  await row('t3').getByRole('button', { name: /^claim/i }).click();
  await page.locator('.notice', { hasText: /Claimed/ }).waitFor();
  let t3 = await api('Task/t3');
  assert.equal(t3.owner?.reference, 'Practitioner/p1');
  assert.equal(t3.status, 'requested');
  // claimed, it leaves the role pool for the caller's own buckets
  await page.locator('section[aria-labelledby="b-upcoming"] tr[data-task="t3"]').waitFor();
  assert.equal(await page.locator('section[aria-labelledby="b-unassigned"]').count(), 0);
  await row('t3').getByRole('button', { name: /^done/i }).click();
  await page.locator('.notice', { hasText: /Completed/ }).waitFor();
  t3 = await api('Task/t3');
  assert.equal(t3.status, 'completed');
  // requested -> received -> accepted -> in-progress -> completed, one version each
  assert.equal(t3.meta.versionId, '6');
  assert.equal(await row('t3').count(), 0, 'a completed task leaves the worklist');
  await screenshot(page, 'web-worklist-after-complete');
});

test('keyboard: j/k move, h holds, ? shows the shortcuts', async () => {
  await page.locator('body').click({ position: { x: 5, y: 400 } });
  await page.keyboard.press('?');
  await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor();
  await screenshot(page, 'web-keyboard-help');
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  // rows in order: t1 (overdue), then the upcoming t2 and t4
  const order = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.task));
  assert.deepEqual(order, ['t1', 't2', 't4']);
  for (let i = 0; i < 5; i++) await page.keyboard.press('k');
  assert.equal(await page.locator('tr.selected').getAttribute('data-task'), 't1');
  for (let i = 0; i < 5; i++) await page.keyboard.press('j');
  assert.equal(await page.locator('tr.selected').getAttribute('data-task'), 't4');
  await page.keyboard.press('k');
  assert.equal(await page.locator('tr.selected').getAttribute('data-task'), 't2');
  await page.keyboard.press('j');
  assert.equal(await page.locator('tr.selected').getAttribute('data-task'), 't4');
  await page.keyboard.press('h');
  await page.locator('.notice', { hasText: /Put on hold/ }).waitFor();
  assert.equal((await api('Task/t4')).status, 'on-hold');
  await page.locator('section.bucket', { hasText: 'On hold' }).waitFor();
});

test('a task changed underneath shows the 412 and what changed', async () => {
  await page.goto(`${concerto.base}/`);
  await row('t2').waitFor({ timeout: 20000 });
  // someone else changes Task t2 after the page loaded it
  const before = await api('Task/t2');
  const theirs = { ...before, priority: 'asap', owner: { reference: 'Practitioner/p2' } };
  delete theirs.meta;
  await api('Task/t2', { method: 'PUT', body: JSON.stringify(theirs), headers: { 'If-Match': `W/"${before.meta.versionId}"` } });

  await row('t2').getByRole('button', { name: /^hold/i }).click();
  const conflict = page.locator('section.conflict');
  await conflict.waitFor();
  const text = await conflict.textContent();
  assert.match(text, /Someone else changed “Book Bob's follow-up visit”/);
  assert.match(text, /priority: routine → asap/);
  assert.match(text, /owner: You → Dana Nurse/);
  assert.match(text, new RegExp(`version ${before.meta.versionId};.*version ${Number(before.meta.versionId) + 1}`));
  await screenshot(page, 'web-conflict');
  // their change stands on the server until the person decides again
  assert.equal((await api('Task/t2')).owner.reference, 'Practitioner/p2');
  await conflict.getByRole('button', { name: /try again/i }).click();
  await page.locator('.notice', { hasText: /Put on hold/ }).waitFor();
  const now = await api('Task/t2');
  assert.equal(now.status, 'on-hold');
  // the retry is made on their version: their owner and priority stay
  assert.equal(now.owner.reference, 'Practitioner/p2');
  assert.equal(now.priority, 'asap');
});

test('reassigns a task to someone else', async () => {
  await row('t1').getByRole('button', { name: /^reassign/i }).click();
  const dialog = page.getByRole('dialog', { name: /Reassign “Call Ann about her new medication”/ });
  await dialog.waitFor();
  await dialog.getByLabel('New owner').selectOption({ label: 'Dana Nurse' });
  await screenshot(page, 'web-reassign');
  await dialog.getByRole('button', { name: 'Reassign' }).click();
  await page.locator('.notice', { hasText: /Reassigned/ }).waitFor();
  const t1 = await api('Task/t1');
  assert.equal(t1.owner.reference, 'Practitioner/p2');
  // no longer Casey's: it leaves her worklist
  await row('t1').waitFor({ state: 'detached' });
});

test('finds patients by name, identifier and birth date, with their columns', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Patients' }).click();
  await page.getByRole('heading', { name: 'Patients' }).waitFor();
  await page.locator('tr[data-patient="ann"]').waitFor({ timeout: 20000 });
  assert.equal(await page.locator('tbody tr').count(), 3);
  await page.getByLabel('Name').fill('Ashworth');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
  const cells = await page.locator('tr[data-patient="ann"] td').allTextContents();
  assert.match(cells[0], /Ann Ashworth/);
  assert.match(cells[0], /MRN-1001/);
  assert.equal(cells[1], '1941-03-02');
  assert.equal(cells[2], '82%');
  assert.equal(cells[3], 'Casey Coordinator');
  assert.equal(cells[4], '1');
  // the call, not the engine's notifications to staff
  assert.match(cells[5], /^Mar 1, 2026/);
  await screenshot(page, 'web-patients-search');

  await page.getByLabel('Name').fill('');
  await page.getByLabel('Identifier').fill('MRN-1002');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForFunction(() => document.querySelector('tbody tr')?.dataset.patient === 'bob');
  assert.equal(await page.locator('tbody tr').count(), 1);

  await page.getByLabel('Identifier').fill('');
  await page.getByLabel('Birth date').fill('1962-11-30');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForFunction(() => document.querySelector('tbody tr')?.dataset.patient === 'cy');
  assert.equal(await page.locator('tbody tr').count(), 1);

  // all of them, sorted by risk, highest first; no risk sorts last
  await page.getByLabel('Birth date').fill('');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 3);
  await page.getByRole('button', { name: /^Risk/ }).click();
  const order = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.patient));
  assert.deepEqual(order, ['ann', 'bob', 'cy']);
  assert.equal(await page.locator('th[aria-sort="descending"]').textContent(), 'Risk ▼');
  await screenshot(page, 'web-patients-sorted');
});

test('a patient overview and a task with its history', async () => {
  await page.locator('tr[data-patient="bob"] a').click();
  await page.getByRole('heading', { name: 'Bob Brennan' }).waitFor();
  // the sections fill in as their searches return
  await page.locator('dl[aria-label="Coordination"]', { hasText: /Risklow.*Primary coordinatorCasey Coordinator/ }).waitFor();
  await page.getByRole('link', { name: "Book Bob's follow-up visit", exact: true }).waitFor();
  await screenshot(page, 'web-patient');
  await page.getByRole('link', { name: "Book Bob's follow-up visit", exact: true }).click();
  await page.getByRole('heading', { name: 'History' }).waitFor();
  const history = await page.locator('ol.history > li').allTextContents();
  assert.equal(history.length, 4);
  assert.match(history[0], /status: in-progress → on-hold/);
  assert.match(history[1], /status: ready → in-progress/);
  assert.match(history[2], /owner: Casey Coordinator → Dana Nurse/);
  assert.match(history[2], /priority: routine → asap/);
  assert.match(history[3], /created as ready/);
  // who made each version: the signed-in coordinator, the other account's change through the
  // API, and the import that loaded the Task
  const authors = await page.locator('ol.history > li .author').allTextContents();
  assert.deepEqual(authors, ['Casey Coordinator', 'Casey Coordinator', 'checker', 'import']);
  // Task t1 was due in 2020: the engine marked it overdue, then Casey reassigned it
  await page.goto(`${concerto.base}/tasks/t1`);
  await page.getByRole('heading', { name: 'History' }).waitFor();
  await page.locator('ol.history > li .author').first().waitFor();
  const t1 = await page.locator('ol.history > li .author').allTextContents();
  assert.equal(t1[t1.length - 1], 'import');
  assert.ok(t1.includes('concerto-engine'), t1.join(', '));
  assert.equal(t1[0], 'Casey Coordinator');
  await screenshot(page, 'web-task-history');
});

test('transitions: who is in hospital, and the TCM clocks of the discharges', async () => {
  const ACT = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
  const hours = (n) => new Date(Date.now() + n * 3600000).toISOString();
  await api('Encounter/stay-ann', { method: 'PUT', body: JSON.stringify({
    resourceType: 'Encounter', id: 'stay-ann', status: 'in-progress',
    class: { system: ACT, code: 'IMP', display: 'inpatient encounter' },
    subject: { reference: 'Patient/ann' }, period: { start: hours(-48) } }) });
  await api('Encounter/stay-bob', { method: 'PUT', body: JSON.stringify({
    resourceType: 'Encounter', id: 'stay-bob', status: 'finished',
    class: { system: ACT, code: 'IMP', display: 'inpatient encounter' },
    subject: { reference: 'Patient/bob' }, period: { start: hours(-120), end: hours(-1) } }) });
  const report = await api('Encounter/stay-bob/$tcm');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Transitions' }).click();
  await page.getByRole('heading', { name: 'Transitions' }).waitFor();
  const inside = page.locator('section[aria-labelledby="t-admitted"] tr[data-encounter="stay-ann"]');
  await inside.waitFor({ timeout: 20000 });
  assert.match(await inside.textContent(), /Ann Ashworth.*inpatient encounter/);
  const cells = await page.locator('section[aria-labelledby="t-discharged"] tr[data-encounter="stay-bob"] td').allTextContents();
  assert.match(cells[0], /Bob Brennan/);
  // each requirement as the server's report has it, with the time left while pending
  const requirements = report.parameter.filter((p) => p.name === 'requirement').map((p) =>
    Object.fromEntries(p.part.map((x) => [x.name, x.valueCode ?? x.valueDateTime])));
  assert.deepEqual(requirements.map((r) => r.name), ['interactive-contact', 'face-to-face', 'medication-reconciliation']);
  requirements.forEach((r, i) => {
    const cell = cells[3 + i];
    if (r.status === 'pending') assert.match(cell, /^due in \d+ (d|h|min)/, cell);
    else assert.ok(cell.startsWith(r.status), `${r.name}: ${cell}`);
  });
  const code = report.parameter.find((p) => p.name === 'code').part;
  const part = (name) => code.find((x) => x.name === name)?.valueCode;
  assert.ok(cells[6].startsWith(part('code')), cells[6]);
  if (part('status') === 'provisional' && part('reachable') && part('reachable') !== part('code'))
    assert.match(cells[6], new RegExp(`provisional: ${part('reachable')} reachable`));
  await screenshot(page, 'web-transitions');
});

test('a worklist the server refuses says why, in its words', async () => {
  // an administrator is linked to no Practitioner: $worklist answers 403 with an OperationOutcome
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const other = await context.newPage();
  await other.goto(`${concerto.base}/worklist`);
  await signInAs(other, 'ada');
  await other.waitForURL(`${concerto.base}/worklist`, { timeout: 20000 });
  const alert = other.getByRole('alert');
  await alert.waitFor({ timeout: 20000 });
  assert.match(await alert.textContent(),
               /Could not load your worklist: \$worklist lists a staff member's work, and this account is linked to no Practitioner or PractitionerRole/);
  await alert.getByRole('button', { name: 'Try again' }).waitFor();
  await screenshot(other, 'web-worklist-error');
  await context.close();
});

test('signs out', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'You are signed out' }).waitFor();
  await screenshot(page, 'web-signed-out');
});
