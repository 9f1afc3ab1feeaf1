// The coordinators' web app on a server on PostgreSQL, which keeps its signing key in the
// database (given only --secrets-key): the sign-in's id_token names the coordinator's
// Practitioner, so claiming a Task works as on SQLite (web_app.test.js). Runs when
// CONCERTO_TEST_PG_CLUSTER names a tools/pg-cluster directory (tools/check starts one),
// else it is skipped.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import {
  cleanup, cli, join, launchBrowser, root, screenshot, startConcerto, tempDir, writeFileSync,
} from './harness.js';
import { signInAs } from './signin.js';

const cluster = process.env.CONCERTO_TEST_PG_CLUSTER;
const skip = cluster ? false : 'no PostgreSQL cluster (CONCERTO_TEST_PG_CLUSTER)';
const PASSWORD = 'amber-orchard-violin-73';
const SECRET = 'c'.repeat(40);
const SNOMED = 'http://snomed.info/sct';
const coordinatorRole = [{ coding: [{ system: SNOMED, code: '768820003', display: 'Care coordinator' }] }];

const FIXTURES = [
  { resourceType: 'Practitioner', id: 'p1', name: [{ family: 'Coordinator', given: ['Casey'] }] },
  { resourceType: 'Patient', id: 'cy', name: [{ family: 'Cole', given: ['Cy'] }], birthDate: '1962-11-30' },
  { resourceType: 'CareTeam', id: 'ct-cy', status: 'active', subject: { reference: 'Patient/cy' },
    participant: [{ role: coordinatorRole, member: { reference: 'Practitioner/p1' }, period: { start: '2020-01-01' } }] },
  { resourceType: 'Task', id: 't3', intent: 'order', status: 'requested', for: { reference: 'Patient/cy' },
    performerType: coordinatorRole, description: "Review Cy's discharge summary" },
];

let dir, concerto, browser, page;

before(async () => {
  if (skip) return;
  dir = tempDir();
  const made = spawnSync(join(root, 'tools/pg-cluster'), ['createdb', cluster, `browser_${process.pid}`],
                         { encoding: 'utf8', timeout: 60000 });
  assert.equal(made.status, 0, made.stderr);
  const db = made.stdout.trim().split('\n').pop();
  const data = join(dir, 'fixtures.ndjson');
  writeFileSync(data, FIXTURES.map((r) => JSON.stringify(r)).join('\n') + '\n');
  cli(['import', '--db', db, data]);
  cli(['user', 'add', '--db', db, '--username', 'casey', '--role', 'coordinator', '--practitioner', 'p1',
       '--password-stdin'], PASSWORD + '\n');
  cli(['client', 'add', '--db', db, '--client-id', 'checker', '--secret-stdin', '--scopes', 'system/*.cruds'],
      SECRET + '\n');
  const key = join(dir, 'secrets.key');
  writeFileSync(key, randomBytes(32).toString('hex') + '\n');
  chmodSync(key, 0o600);
  concerto = await startConcerto(db, ['--secrets-key', key], { dir });
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

test('on PostgreSQL with only --secrets-key, a coordinator signs in and claims a task', { skip }, async () => {
  assert.match(concerto.stderr(), /created the signing key \S+ in the database/);
  await page.goto(`${concerto.base}/`);
  await signInAs(page, 'casey', PASSWORD);
  await page.waitForURL(`${concerto.base}/`, { timeout: 20000 });
  await page.locator('tr[data-task="t3"]').waitFor({ timeout: 20000 });
  // the id_token told the app who signed in
  await page.getByTestId('me').filter({ hasText: 'Casey Coordinator' }).waitFor({ timeout: 20000 });
  await page.locator('tr[data-task="t3"]').getByRole('button', { name: /^claim/i }).click();
  await page.locator('.notice', { hasText: /Claimed/ }).waitFor();
  await screenshot(page, 'web-worklist-postgresql-claimed');
  const token = await fetch(`${concerto.base}/oauth2/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded',
               Authorization: `Basic ${Buffer.from(`checker:${SECRET}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/*.cruds' }),
  }).then((r) => r.json());
  const t3 = await fetch(`${concerto.fhir}/Task/t3`, { headers: { Authorization: `Bearer ${token.access_token}` } })
    .then((r) => r.json());
  assert.equal(t3.owner?.reference, 'Practitioner/p1');
});
