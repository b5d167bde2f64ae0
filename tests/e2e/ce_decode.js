// SPDX-License-Identifier: MIT
// Decodes Kafka messages with the CloudEvents SDK for JavaScript (the
// `cloudevents` npm package, Kafka protocol binding) and validates each
// event against the CloudEvents 1.0 rules the SDK enforces.
//   node ce_decode.js MESSAGES.json  ->  JSON array on stdout
// MESSAGES.json: [{"key": str|null, "value": str, "headers": {name: str}}]
// Output per message: {"ok": true, "event": {...attributes, data}} or
// {"ok": false, "error": "..."}.
"use strict";
const fs = require("fs");
const { Kafka, CloudEvent } = require("cloudevents");

const messages = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = messages.map((m) => {
  try {
    const msg = { key: m.key, value: m.value, headers: m.headers, body: m.value };
    if (!Kafka.isEvent(msg)) {
      return { ok: false, error: "not recognised as a CloudEvent" };
    }
    const ev = Kafka.toEvent(msg);
    if (Array.isArray(ev)) {
      return { ok: false, error: "decoded as a batch" };
    }
    // toEvent() builds the event without validation: validate explicitly
    // (required attributes, their types, extension attribute names).
    const strict = new CloudEvent(ev.toJSON(), true);
    strict.validate();
    return { ok: true, event: strict.toJSON() };
  } catch (err) {
    const detail = err && err.errors ? " " + JSON.stringify(err.errors) : "";
    return { ok: false, error: String(err && err.message ? err.message : err) + detail };
  }
});
process.stdout.write(JSON.stringify(out));
