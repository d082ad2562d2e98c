// Validates every line of a JSON-lines file against one schema of an OpenAPI 3.1 document
// (`#/components/schemas/<name>`), with Ajv in JSON Schema 2020-12 mode, strict: what an
// integrator's own validator would say of an export's lines.
// Prints each line that fails, with why; exits 1 if any does.
//
// Usage: node tools/openapi/validate-lines.mjs docs/api/openapi.json ExportLine lines.jsonl
import { readFile } from 'node:fs/promises';
import Ajv2020 from 'ajv/dist/2020.js';

const [documentPath, name, linesPath] = process.argv.slice(2);
if (!documentPath || !name || !linesPath) {
  console.error('usage: node validate-lines.mjs <openapi document> <schema name> <file.jsonl>');
  process.exit(2);
}
const document = JSON.parse(await readFile(documentPath, 'utf8'));
const schema = document.components?.schemas?.[name];
if (!schema) {
  console.error(`${documentPath}: no #/components/schemas/${name}`);
  process.exit(1);
}
const ajv = new Ajv2020({ strict: true, validateFormats: false, allErrors: true });
const check = ajv.compile(schema);
const lines = (await readFile(linesPath, 'utf8')).split('\n').filter((l) => l.length > 0);
let failed = 0;
lines.forEach((text, i) => {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    failed += 1;
    console.error(`line ${i + 1}: not JSON: ${e.message}`);
    return;
  }
  if (!check(value)) {
    failed += 1;
    console.error(`line ${i + 1}: ${ajv.errorsText(check.errors)}`);
  }
});
console.log(`${lines.length} lines, ${failed} invalid against ${name}`);
process.exit(failed > 0 ? 1 : 0);
