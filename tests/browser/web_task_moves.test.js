// A status several moves away (Done on a requested Task) is written one move at a time. A
// version written between two moves that keeps the status and owner the app wrote (as the
// engine's overdue mark does) is built on and kept; one that changes the owner is a conflict.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cleanup, cli, launchBrowser, startConcerto, tempDir, writeFileSync } from './harness.js';
import { signInAs } from './signin.js';

const PASSWORD = 'quartz-meadow-lantern-58';
const SECRET = 'e'.repeat(40);
const SNOMED = 'http://snomed.info/sct';
const coordinatorRole = [{ coding: [{ system: SNOMED, code: '768820003', display: 'Care coordinator' }] }];

let dir, concerto, browser, page, apiToken;

function task(id, description) {
  return { resourceType: 'Task', id, intent: 'order', status: 'requested', priority: 'routine',
           for: { reference: 'Patient/ann' }, owner: { reference: 'Practitioner/p1' }, description,
           restriction: { period: { end: '2099-01-01T12:00:00Z' } } };
}

const FIXTURES = [
  { resourceType: 'Practitioner', id: 'p1', name: [{ family: 'Coordinator', given: ['Casey'] }] },
  { resourceType: 'Practitioner', id: 'p2', name: [{ family: 'Nurse', given: ['Dana'] }] },
  { resourceType: 'Patient', id: 'ann', name: [{ family: 'Ashworth', given: ['Ann'] }], birthDate: '1941-03-02' },
  { resourceType: 'CareTeam', id: 'ct-ann', status: 'active', subject: { reference: 'Patient/ann' },
    participant: [{ role: coordinatorRole, member: { reference: 'Practitioner/p1' }, period: { start: '2020-01-01' } }] },
  task('m1', 'Call Ann about her inhaler'),
  task('m2', 'Check Ann\'s weight log'),
];

async function api(path, init = {}) {
  const r = await fetch(`${concerto.fhir}/${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${apiToken}`, 'Content-Type': 'application/fhir+json', ...(init.headers ?? {}) },
  });
  const body = await r.json();
  assert.ok(r.ok, `${init.method ?? 'GET'} ${path}: ${r.status} ${JSON.stringify(body)}`);
  return body;
}

// Before the app's move to `status` reaches the server, someone else writes the Task as
// change(current) makes it.
async function writeBefore(id, status, change) {
  let done = false;
  await page.route(`**/fhir/Task/${id}`, async (route) => {
    const req = route.request();
    if (!done && req.method() === 'PUT' && JSON.parse(req.postData()).status === status) {
      done = true;
      const now = await api(`Task/${id}`);
      const theirs = change(structuredClone(now));
      delete theirs.meta;
      await api(`Task/${id}`, { method: 'PUT', body: JSON.stringify(theirs),
                                headers: { 'If-Match': `W/"${now.meta.versionId}"` } });
    }
    await route.continue();
  });
}

before(async () => {
  dir = tempDir();
  const db = join(dir, 'concerto.db');
  const data = join(dir, 'fixtures.ndjson');
  writeFileSync(data, FIXTURES.map((r) => JSON.stringify(r)).join('\n') + '\n');
  cli(['import', '--db', db, data]);
  cli(['user', 'add', '--db', db, '--username', 'casey', '--role', 'coordinator', '--practitioner', 'p1',
       '--password-stdin'], PASSWORD + '\n');
  cli(['client', 'add', '--db', db, '--client-id', 'other', '--secret-stdin', '--scopes', 'system/*.cruds'],
      SECRET + '\n');
  concerto = await startConcerto(db);
  const r = await fetch(`${concerto.base}/oauth2/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded',
               Authorization: `Basic ${Buffer.from(`other:${SECRET}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/*.cruds' }),
  });
  apiToken = (await r.json()).access_token;
  assert.ok(apiToken);
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${concerto.base}/`);
  await signInAs(page, 'casey', PASSWORD);
  await page.locator('tr[data-task="m1"]').waitFor({ timeout: 20000 });
});

after(async () => {
  await browser?.close();
  if (concerto) {
    const code = await concerto.stop();
    assert.equal(code, 0, `concerto serve exited ${code}: ${concerto.stderr()}`);
  }
  if (dir) cleanup(dir);
});

test('a write between two moves that keeps status and owner is built on', async () => {
  // between received and accepted someone adds a note (status and owner as the app wrote them)
  await writeBefore('m1', 'accepted', (t) => ({ ...t, note: [{ text: 'Ann prefers mornings' }] }));
  await page.locator('tr[data-task="m1"]').getByRole('button', { name: /^done/i }).click();
  await page.locator('.notice', { hasText: /Completed/ }).waitFor({ timeout: 20000 });
  assert.equal(await page.locator('section.conflict').count(), 0);
  const m1 = await api('Task/m1');
  assert.equal(m1.status, 'completed');
  assert.equal(m1.owner.reference, 'Practitioner/p1');
  assert.deepEqual(m1.note, [{ text: 'Ann prefers mornings' }], 'their change is kept');
  const history = await api('Task/m1/_history');
  const statuses = history.entry.map((e) => e.resource.status).reverse();
  assert.deepEqual(statuses, ['requested', 'received', 'received', 'accepted', 'in-progress', 'completed']);
  await page.unrouteAll();
});

test('a write between two moves that changes the owner is a conflict', async () => {
  await writeBefore('m2', 'accepted', (t) => ({ ...t, owner: { reference: 'Practitioner/p2' } }));
  await page.locator('tr[data-task="m2"]').getByRole('button', { name: /^done/i }).click();
  const conflict = page.locator('section.conflict');
  await conflict.waitFor({ timeout: 20000 });
  assert.match(await conflict.textContent(), /owner: You → Dana Nurse/);
  const m2 = await api('Task/m2');
  assert.equal(m2.status, 'received', 'no move is made over their change');
  assert.equal(m2.owner.reference, 'Practitioner/p2');
  await page.unrouteAll();
});
