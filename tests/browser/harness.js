// What the browser tests share: a Concerto server on a fresh database, a static web server for
// the test apps, and headless Chromium driven by playwright-core.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '..', '..');

// The binary under test: the sanitizer build when it is there, as the integration tests use.
export const concertoBin =
  process.env.CONCERTO_BIN ||
  (existsSync(join(root, 'build/san/concerto')) ? join(root, 'build/san/concerto') : join(root, 'build/concerto'));

// Screenshots of every screen a test reaches are kept here, for people to look at.
export const artifacts = process.env.CONCERTO_ARTIFACTS || join(root, 'build/test-artifacts/browser');

// The environment of concerto: the sanitizer build's leak check knows the libraries' own
// allocations that live until exit (tools/lsan.supp), as tools/check sets it.
const env = {
  ...process.env,
  LSAN_OPTIONS: process.env.LSAN_OPTIONS ||
    `suppressions=${join(root, 'tools/lsan.supp')}:print_suppressions=0`,
};

export function tempDir() {
  return mkdtempSync(join(tmpdir(), 'concerto-browser-'));
}

// Runs a concerto command to completion; throws with its output when it fails.
export function cli(args, input) {
  const out = spawnSync(concertoBin, args, { input: input ?? '', encoding: 'utf8', timeout: 120000, env });
  if (out.status !== 0)
    throw new Error(`concerto ${args.join(' ')} exited ${out.status}: ${out.stderr}${out.stdout}`);
  return out.stdout;
}

// Starts `concerto serve` on a free port of 127.0.0.1 and waits until it answers. extra: more
// arguments of serve. With { mllp: true } it also listens for HL7 v2 over MLLP on a free port
// of 127.0.0.1 and waits for that too: the answer's mllpPort. The port files go beside the
// database file, or in { dir } (for a postgresql:// database).
export async function startConcerto(db, extra = [], { mllp = false, dir = dirname(db) } = {}) {
  const portFile = join(dir, `port-${Date.now()}`);
  const mllpPortFile = join(dir, `mllp-port-${Date.now()}`);
  const mllpArgs = mllp ? ['--mllp', '127.0.0.1:0', '--mllp-port-file', mllpPortFile] : [];
  const proc = spawn(concertoBin, ['serve', '--db', db, '--listen', '127.0.0.1:0', '--threads', '2',
                                   '--port-file', portFile, ...mllpArgs, ...extra],
                     { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null)
      throw new Error(`concerto serve exited ${proc.exitCode}: ${stderr}`);
    const mllpPort = mllp && existsSync(mllpPortFile) ? parseInt(readFileSync(mllpPortFile, 'utf8'), 10) : 0;
    if (existsSync(portFile) && (!mllp || mllpPort > 0)) {
      const port = parseInt(readFileSync(portFile, 'utf8'), 10);
      if (port > 0) {
        const base = `http://127.0.0.1:${port}`;
        try {
          const r = await fetch(`${base}/healthz`);
          if (r.ok)
            return { proc, base, fhir: `${base}/fhir`, stderr: () => stderr,
                     stop: () => stop(proc), ...(mllp ? { mllpPort } : {}) };
        } catch { /* not yet */ }
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGKILL');
  throw new Error(`concerto serve did not start: ${stderr}`);
}

function stop(proc) {
  return new Promise((res) => {
    if (proc.exitCode !== null) return res(proc.exitCode);
    proc.on('exit', (code) => res(code));
    proc.kill('SIGTERM');
  });
}

const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
                '.map': 'application/json' };

// Serves files (a map of URL path to absolute file) on a free port; resolves to its origin.
export function serveStatic(files) {
  return new Promise((res) => {
    const server = createServer((req, resp) => {
      const path = new URL(req.url, 'http://x').pathname;
      const file = files[path];
      if (!file) {
        resp.writeHead(404).end('not found');
        return;
      }
      resp.writeHead(200, { 'Content-Type': types[extname(file)] || 'application/octet-stream' });
      resp.end(readFileSync(file));
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      res({ origin: `http://127.0.0.1:${port}`, close: () => server.close() });
    });
  });
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // the tests run as root in CI, where Chromium's sandbox cannot start
    args: ['--no-sandbox'],
  });
}

export async function screenshot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

export function cleanup(dir) {
  rmSync(dir, { recursive: true, force: true });
}

export { writeFileSync, join };
