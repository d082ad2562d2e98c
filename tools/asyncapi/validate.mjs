// Validates an AsyncAPI document with the official parser (@asyncapi/parser): the schema of
// the AsyncAPI version, its references, and its rules (Spectral). Prints every diagnostic;
// exits 1 if the document does not parse or any diagnostic is an error.
//
// Usage: node tools/asyncapi/validate.mjs docs/contracts/asyncapi.json
import { readFile } from 'node:fs/promises';
import { Parser } from '@asyncapi/parser';

const path = process.argv[2];
if (!path) {
  console.error('usage: node validate.mjs <asyncapi document>');
  process.exit(2);
}
const severities = ['error', 'warning', 'info', 'hint'];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(path, 'utf8'), { source: path });
let errors = 0;
for (const d of diagnostics) {
  const severity = severities[d.severity] ?? String(d.severity);
  if (d.severity === 0) errors += 1;
  console.log(`${severity} ${d.code} at ${d.path.join('.')}: ${d.message}`);
}
if (!document || errors > 0) {
  console.error(`${path}: ${errors} error(s); the document is ${document ? 'parsed' : 'not parsed'}`);
  process.exit(1);
}
console.log(`${path}: valid AsyncAPI ${document.version()}, ${document.channels().length} channels, ${document.operations().length} operations, ${document.messages().length} messages`);
