// A Flux-like `github` Receiver for the action's self-test workflow (.github/workflows/action.yml):
// serves one path, /hook/sha256(token + name + namespace), checks X-Hub-Signature-256 over the raw
// body with its own HMAC code, answers 200 or 400/404, and logs what it received.
// Usage: node selftest-receiver.mjs <port> <token> <name> <namespace>
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const [port = "9292", token = "", name = "", namespace = ""] = process.argv.slice(2);
const path = `/hook/${createHash("sha256")
  .update(token + name + namespace)
  .digest("hex")}`;

createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const expected = Buffer.from(`sha256=${createHmac("sha256", token).update(body).digest("hex")}`);
    const got = Buffer.from(String(req.headers["x-hub-signature-256"] ?? ""));
    const signed = got.length === expected.length && timingSafeEqual(got, expected);
    const status = req.url !== path ? 404 : signed ? 200 : 400;
    console.log(
      `${req.method} ${status} event=${req.headers["x-github-event"]} delivery=${req.headers["x-github-delivery"]} bytes=${body.length}`,
    );
    res.writeHead(status, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        status,
        reason: status === 200 ? "signature verified" : status === 404 ? "not found" : "signature mismatch",
      }),
    );
  });
}).listen(Number(port), "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}`));
