// The Transitions board fed by the hospital: an admission and a discharge sent over MLLP by
// Debian's mllp_send (a peer written elsewhere) to `concerto serve --mllp`, each acknowledged
// AA; the coordinator sees the patient in hospital, then the discharge with the clocks of
// transitional care that the engine started, each as the server's Encounter/[id]/$tcm has it,
// using the board's Refresh (no reload) and its "last updated" time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import {
  cleanup, cli, join, launchBrowser, root, screenshot, startConcerto, tempDir, writeFileSync,
} from './harness.js';
import { signInAs } from './signin.js';

const run = promisify(execFile);
const PASSWORD = 'amber-orchard-violin-73';
const SECRET = 'c'.repeat(40);
const OID = '2.16.840.1.113883.19.5';
const TZ = 'America/New_York'; // serve's default --calendar-timezone
const coordinatorRole = [{ coding: [{ system: 'http://snomed.info/sct', code: '768820003', display: 'Care coordinator' }] }];

const FIXTURES = [
  { resourceType: 'Practitioner', id: 'p1', name: [{ family: 'Coordinator', given: ['Casey'] }] },
  // PID-3 of the messages names this identifier: MRN-7001 assigned by the authority OID (ISO)
  { resourceType: 'Patient', id: 'eve', name: [{ use: 'official', family: 'Ellison', given: ['Eve'] }],
    birthDate: '1944-05-17', identifier: [{ system: `urn:oid:${OID}`, value: 'MRN-7001' }] },
  { resourceType: 'CareTeam', id: 'ct-eve', status: 'active', subject: { reference: 'Patient/eve' },
    participant: [{ role: coordinatorRole, member: { reference: 'Practitioner/p1' }, period: { start: '2020-01-01' } }] },
];

let dir, concerto, browser, page, apiToken, encounterId;
const admitted = new Date(Date.now() - 2 * 86400000);
const discharged = new Date(Date.now() - 3 * 3600000);

// 20261123074810+0000: an HL7 time with its offset
function hl7Time(d) {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + '+0000';
}

function adt(event, control, fields) {
  const pv1 = [''].concat(Array(45).fill(''));
  pv1[1] = '1';
  pv1[2] = 'I';
  pv1[3] = '5E^512^A^GENHOSP';
  pv1[4] = 'R';
  pv1[19] = 'V7001';
  pv1[44] = hl7Time(admitted);
  Object.assign(pv1, fields);
  const eventTime = event === 'A03' ? discharged : admitted;
  return [
    `MSH|^~\\&|EPIC|GENHOSP|CONCERTO|CLINIC|${hl7Time(new Date())}||ADT^${event}^ADT_${event}|${control}|P|2.5.1`,
    `EVN|${event}|${hl7Time(eventTime)}`,
    `PID|1||MRN-7001^^^GENHOSP&${OID}&ISO^MR||Ellison^Eve^^^^^L||19440517|F`,
    'PV1|' + pv1.slice(1).join('|').replace(/\|+$/, ''),
  ].join('\r') + '\r';
}

// Sends one message with mllp_send; resolves to the MSA of its ACK.
async function send(text) {
  const file = join(dir, `message-${Date.now()}.hl7`);
  writeFileSync(file, Buffer.concat([Buffer.from([0x0b]), Buffer.from(text), Buffer.from([0x1c, 0x0d])]));
  const { stdout } = await run('mllp_send', ['--file', file, '--port', String(concerto.mllpPort), '127.0.0.1'],
                               { timeout: 60000 });
  const msa = stdout.split(/[\r\n]+/).find((s) => s.startsWith('MSA|'));
  assert.ok(msa, `no MSA in the answer: ${stdout}`);
  return msa.split('|');
}

async function api(path) {
  const r = await fetch(`${concerto.fhir}/${path}`, { headers: { Authorization: `Bearer ${apiToken}` } });
  const body = await r.json();
  assert.ok(r.ok, `GET ${path}: ${r.status} ${JSON.stringify(body)}`);
  return body;
}

async function until(what, check, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// The board's clock of a pending requirement, as a person reads it (web/src/transitions.tsx).
function clock(deadline, now) {
  const ms = Date.parse(deadline) - now;
  if (ms <= 0) return 'overdue';
  const minutes = Math.floor(ms / 60000);
  const days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60);
  if (days > 0) return `in ${days} d ${hours} h`;
  if (hours > 0) return `in ${hours} h ${minutes % 60} min`;
  return `in ${minutes} min`;
}

// The local date of an instant in the calendar's zone, and the time of day there.
function local(instant) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', {
    timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
    second: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(instant)).map((p) => [p.type, p.value]));
  return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}:${parts.second}` };
}

// The 2nd business day after a date: weekends and the US federal holidays the server ships
// (data/holidays/us-federal.tsv) do not count.
function secondBusinessDay(date) {
  const holidays = new Set(readFileSync(join(root, 'data/holidays/us-federal.tsv'), 'utf8').split('\n')
    .filter((l) => /^\d{4}-/.test(l)).map((l) => l.slice(0, 10)));
  const d = new Date(`${date}T12:00:00Z`);
  for (let n = 0; n < 2;) {
    d.setUTCDate(d.getUTCDate() + 1);
    const day = d.toISOString().slice(0, 10);
    if (d.getUTCDay() !== 0 && d.getUTCDay() !== 6 && !holidays.has(day)) n++;
  }
  return d.toISOString().slice(0, 10);
}

const board = (section, id) => page.locator(`section[aria-labelledby="${section}"] tr[data-encounter="${id}"]`);

before(async () => {
  dir = tempDir();
  const db = join(dir, 'concerto.db');
  const data = join(dir, 'fixtures.ndjson');
  writeFileSync(data, FIXTURES.map((r) => JSON.stringify(r)).join('\n') + '\n');
  // the built-in protocols, transitional care among them
  cli(['init', '--db', db]);
  cli(['import', '--db', db, data]);
  cli(['user', 'add', '--db', db, '--username', 'casey', '--role', 'coordinator', '--practitioner', 'p1',
       '--password-stdin'], PASSWORD + '\n');
  cli(['client', 'add', '--db', db, '--client-id', 'checker', '--secret-stdin', '--scopes', 'system/*.rs'],
      SECRET + '\n');
  concerto = await startConcerto(db, [], { mllp: true });
  const r = await fetch(`${concerto.base}/oauth2/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded',
               Authorization: `Basic ${Buffer.from(`checker:${SECRET}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/*.rs' }),
  });
  apiToken = (await r.json()).access_token;
  assert.ok(apiToken);
  browser = await launchBrowser();
  // a coordinator's browser in the organisation's zone: the board shows times in the browser's
  page = await browser.newPage({ viewport: { width: 1280, height: 800 }, timezoneId: TZ, locale: 'en-US' });
});

after(async () => {
  await browser?.close();
  if (concerto) {
    const code = await concerto.stop();
    assert.equal(code, 0, `concerto serve exited ${code}: ${concerto.stderr()}`);
  }
  if (dir) cleanup(dir);
});

test('an admission sent over MLLP shows as in hospital on Refresh, without a reload', async () => {
  await page.goto(`${concerto.base}/transitions`);
  await signInAs(page, 'casey', PASSWORD);
  await page.getByRole('heading', { name: 'Transitions' }).waitFor();
  const updated = page.locator('.refresh time');
  await updated.waitFor({ timeout: 20000 });
  assert.match(await page.locator('section[aria-labelledby="t-admitted"]').textContent(), /None of your patients is in hospital/);
  const before = await updated.getAttribute('datetime');

  const msa = await send(adt('A01', 'WEB3-A01', {}));
  assert.deepEqual(msa.slice(1, 3), ['AA', 'WEB3-A01']);
  const encounter = await until('the Encounter of the admission', async () =>
    (await api('Encounter?subject=Patient/eve')).entry?.[0]?.resource);
  encounterId = encounter.id;
  assert.equal(encounter.status, 'in-progress');

  const url = page.url();
  await page.getByRole('button', { name: 'Refresh' }).click();
  const row = board('t-admitted', encounterId);
  await row.waitFor({ timeout: 20000 });
  assert.equal(page.url(), url);
  assert.match(await row.textContent(), /Eve Ellison.*inpatient encounter/);
  assert.match(await page.getByRole('status').filter({ hasText: 'Updated at' }).textContent(), /^Updated at \d/);
  assert.ok(Date.parse(await updated.getAttribute('datetime')) > Date.parse(before));
  await screenshot(page, 'web-transitions-mllp-admitted');
});

test('a discharge sent over MLLP shows with the TCM clocks of the server', async () => {
  assert.ok(encounterId, 'the admission test ran');
  const msa = await send(adt('A03', 'WEB3-A03', { 36: '01', 45: hl7Time(discharged) }));
  assert.deepEqual(msa.slice(1, 3), ['AA', 'WEB3-A03']);
  // the engine starts transitional care: its interactive-contact Task for this discharge
  await until('the TCM Tasks', async () => (await api('Task?patient=Patient/eve&_count=100')).entry?.some((e) =>
    (e.resource.identifier ?? []).some((i) => i.value?.includes(`transitional-care/interactive-contact/Encounter/${encounterId}/`))));
  const encounter = await api(`Encounter/${encounterId}`);
  assert.equal(encounter.status, 'finished');
  assert.equal(Date.parse(encounter.period.end), Math.floor(discharged.getTime() / 1000) * 1000);
  const report = await api(`Encounter/${encounterId}/$tcm`);

  await page.getByRole('button', { name: 'Refresh' }).click();
  const row = board('t-discharged', encounterId);
  await row.waitFor({ timeout: 20000 });
  await board('t-admitted', encounterId).waitFor({ state: 'detached' });
  const cells = await row.locator('td').allTextContents();
  const now = Date.now();
  const shown = (instant) => page.evaluate((v) => new Date(v).toLocaleString(undefined,
    { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }), instant);
  assert.match(cells[0], /Eve Ellison/);
  assert.equal(cells[1], await shown(encounter.period.end));
  const top = (name) => report.parameter.find((p) => p.name === name);
  assert.equal(cells[2], top('complexity').valueCode);
  // each requirement as the report has it; a pending one with its time left and deadline
  const requirements = report.parameter.filter((p) => p.name === 'requirement').map((p) =>
    Object.fromEntries(p.part.map((x) => [x.name, x.valueCode ?? x.valueDateTime ?? x.valueInstant])));
  assert.deepEqual(requirements.map((r) => r.name), ['interactive-contact', 'face-to-face', 'medication-reconciliation']);
  for (const [i, r] of requirements.entries()) {
    assert.equal(r.status, 'pending', `${r.name} just after the discharge`);
    const by = `by ${await shown(r.deadline)}`;
    // the board drew it a moment ago: its clock is of now or of a minute before
    const expected = [now, now - 60000].map((t) => `due ${clock(r.deadline, t)}${by}`);
    assert.ok(expected.includes(cells[3 + i]), `${r.name}: ${cells[3 + i]} is not one of ${expected}`);
  }
  // the interactive contact: the end of the 2nd business day after the discharge's date
  const contact = local(requirements[0].deadline);
  assert.equal(contact.date, secondBusinessDay(local(encounter.period.end).date));
  assert.equal(contact.time, '23:59:59');
  assert.match(cells[3], /by \w{3} \d+, \d{4}, 11:59 PM$/);
  const code = top('code').part;
  const part = (name) => code.find((x) => x.name === name)?.valueCode;
  assert.ok(cells[6].startsWith(part('code')), cells[6]);
  if (part('status') === 'provisional' && part('reachable') && part('reachable') !== part('code'))
    assert.match(cells[6], new RegExp(`provisional: ${part('reachable')} reachable`));
  await screenshot(page, 'web-transitions-mllp-laptop');
  await page.setViewportSize({ width: 768, height: 1024 });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  await screenshot(page, 'web-transitions-mllp-tablet');
  assert.ok(width <= 768, `the board is ${width} px wide on a 768 px screen`);
});
