// Validates Kubernetes manifests offline against the Kubernetes OpenAPI schemas, with the models
// of the npm package kubernetes-models (installed into tests/deploy/node_modules by ./dev).
// Every YAML document of every file named is looked up by apiVersion and kind and validated
// (types, required fields, enumerations, formats); a document of an unknown kind is an error.
// The models accept fields their schema does not name: tests/integration/test_kubernetes.py
// checks field names with Debian's python3-kubernetes.
//
// Usage: node validate_kubernetes.mjs FILE.yaml...
// Prints one line per document ("ok FILE: Kind/name" or "error FILE: Kind/name: reason") and
// exits 1 when any document is invalid.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseAllDocuments } from "yaml";

const require = createRequire(import.meta.url);

// The model class of a document: apiVersion "apps/v1" is module kubernetes-models/apps/v1/KIND,
// "v1" is kubernetes-models/v1/KIND; null when there is none.
function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string" || !/^[A-Za-z]+$/.test(kind))
    return null;
  try {
    return require(`kubernetes-models/${apiVersion}/${kind}`)[kind];
  } catch {
    return null;
  }
}

let failed = 0;
for (const file of process.argv.slice(2)) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length) {
      console.log(`error ${file}: YAML: ${doc.errors[0].message}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null) continue;
    const label = `${obj.kind}/${obj.metadata?.name}`;
    const Model = modelFor(obj.apiVersion, obj.kind);
    if (!Model) {
      console.log(`error ${file}: ${label}: no Kubernetes model for ${obj.apiVersion} ${obj.kind}`);
      failed++;
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      console.log(`error ${file}: ${label}: ${e.message}`);
      failed++;
      continue;
    }
    console.log(`ok ${file}: ${label}`);
  }
}
process.exit(failed ? 1 : 0);
