// Builds the web app and writes it as a C header for src/http/web.c.
//
//   node web/build.mjs OUT.h
//
// esbuild bundles src/main.tsx (Preact, TypeScript) and src/app.css, minified; every asset is
// named after a hash of its content (assets/main-3f2a9c1e.js), so it may be cached forever,
// and index.html, which names them, is never cached. Each file is embedded with its content
// type, an ETag and, when that is smaller, a gzip copy.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, constants } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: node web/build.mjs OUT.h');
  process.exit(2);
}

const result = await build({
  entryPoints: [join(here, 'src/main.tsx'), join(here, 'src/app.css')],
  bundle: true,
  minify: true,
  write: false,
  outdir: 'assets',
  entryNames: '[name]-[hash]',
  format: 'esm',
  target: ['chrome109', 'firefox115', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
  absWorkingDir: here,
});

const types = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
                '.html': 'text/html; charset=utf-8' };
const files = [];
for (const f of result.outputFiles) {
  const name = f.path.slice(f.path.lastIndexOf('/assets/'));
  files.push({ path: name, body: Buffer.from(f.contents) });
}
const script = files.find((f) => f.path.endsWith('.js')).path;
const style = files.find((f) => f.path.endsWith('.css')).path;
const index = readFileSync(join(here, 'src/index.html'), 'utf8')
  .replace('%SCRIPT%', script).replace('%STYLE%', style);
files.push({ path: '/index.html', body: Buffer.from(index) });

function cBytes(buf) {
  const lines = [];
  for (let i = 0; i < buf.length; i += 20)
    lines.push('    ' + Array.from(buf.subarray(i, i + 20), (b) => `${b},`).join(''));
  return lines.join('\n') || '    0,';
}

let c = `/* generated from web/ by web/build.mjs: the coordinators' web app */\n`;
const rows = [];
files.forEach((f, i) => {
  const ext = f.path.slice(f.path.lastIndexOf('.'));
  const etag = '"' + createHash('sha256').update(f.body).digest('hex').slice(0, 16) + '"';
  const gz = gzipSync(f.body, { level: constants.Z_BEST_COMPRESSION });
  const useGz = gz.length < f.body.length * 0.9;
  c += `static const unsigned char web__file${i}[] = {\n${cBytes(f.body)}\n};\n`;
  if (useGz)
    c += `static const unsigned char web__file${i}_gz[] = {\n${cBytes(gz)}\n};\n`;
  rows.push(`    {"${f.path}", "${types[ext]}", "${etag.replace(/"/g, '\\"')}", web__file${i}, ` +
            `${f.body.length}, ${useGz ? `web__file${i}_gz` : 'NULL'}, ${useGz ? gz.length : 0}},`);
});
c += `static const web_asset_t web__assets[] = {\n${rows.join('\n')}\n};\n`;
c += `static const size_t web__nassets = sizeof(web__assets) / sizeof(web__assets[0]);\n`;
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out + '.tmp', c);
renameSync(out + '.tmp', out);
const total = files.reduce((n, f) => n + f.body.length, 0);
console.log(`web: ${files.length} files, ${total} bytes (${files.map((f) => f.path).join(' ')})`);
