// Validates an OpenAPI 3.1 document the way integrators' tools will read it:
// 1. @readme/openapi-parser: the document against the OpenAPI 3.1 schema, its references, and
//    the rules that schema cannot say (unique operationIds, path parameters declared and
//    required, arrays with items, ...);
// 2. Ajv in JSON Schema 2020-12 mode (OpenAPI 3.1's dialect), strict: every schema in the
//    document compiles (components and the inline ones of parameters, headers, bodies and
//    answers), so an invalid keyword or a dangling $ref is an error, not a shrug in a client
//    generator.
// Prints what it found; exits 1 on any error.
//
// Usage: node tools/openapi/validate.mjs docs/api/openapi.json
import { readFile } from 'node:fs/promises';
import { validate, compileErrors } from '@readme/openapi-parser';
import Ajv2020 from 'ajv/dist/2020.js';

const path = process.argv[2];
if (!path) {
  console.error('usage: node validate.mjs <openapi document>');
  process.exit(2);
}
const text = await readFile(path, 'utf8');
const document = JSON.parse(text);

// 1. The OpenAPI rules. validate() dereferences the object it is given, so it gets a copy.
const result = await validate(JSON.parse(text));
if (!result.valid) {
  console.error(compileErrors(result));
  console.error(`${path}: not a valid OpenAPI document`);
  process.exit(1);
}
if (result.warnings.length > 0) {
  console.log(compileErrors(result));
}

// 2. Every schema compiles. The document is registered under an id, and each schema's
// local references ("#/components/schemas/X") are made to point into it.
const id = 'urn:orderly:openapi';
const ajv = new Ajv2020({ strict: true, validateFormats: false, allErrors: true });
ajv.addKeyword('components'); // the document itself is not a schema; its parts are
for (const key of Object.keys(document)) {
  if (key !== 'components') ajv.addKeyword(key);
}
ajv.addSchema(document, id);
const anchored = (value) => {
  if (Array.isArray(value)) return value.map(anchored);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        k === '$ref' && typeof v === 'string' && v.startsWith('#') ? id + v : anchored(v),
      ]),
    );
  }
  return value;
};
const schemas = [];
for (const name of Object.keys(document.components?.schemas ?? {})) {
  schemas.push([`#/components/schemas/${name}`, { $ref: `${id}#/components/schemas/${name}` }]);
}
const inline = (value, where) => {
  if (Array.isArray(value)) {
    value.forEach((v, i) => inline(v, `${where}/${i}`));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'schema' && v && typeof v === 'object') {
        schemas.push([`${where}/schema`, anchored(v)]);
      } else if (!(where === '#/components' && k === 'schemas')) {
        inline(v, `${where}/${k}`);
      }
    }
  }
};
inline(document.paths, '#/paths');
inline(document.components, '#/components');
let errors = 0;
for (const [where, schema] of schemas) {
  try {
    ajv.compile(schema);
  } catch (e) {
    errors += 1;
    console.error(`error at ${where}: ${e.message}`);
  }
}
if (errors > 0) {
  console.error(`${path}: ${errors} schema(s) do not compile as JSON Schema 2020-12`);
  process.exit(1);
}
const operations = Object.values(document.paths).flatMap((item) => Object.keys(item)).length;
console.log(
  `${path}: valid OpenAPI ${document.openapi}, ${Object.keys(document.paths).length} paths, ${operations} operations, ${schemas.length} schemas compiled`,
);
