/**
 * What an operator sees: Prometheus metrics under Flux's names plus fluxhook's own, and the
 * recent deliveries as JSON and as a page (rendered in headless Chromium when it is installed).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { chromium, type Browser } from "playwright-core";
import { githubExample } from "../support/payloads";
import { startStack, type Stack } from "../support/stack";
import { GIT } from "../support/kinds";
import { githubHeaders } from "../support/signer";

const TOKEN = "observability-token";
const NS = "observe";
const push = githubExample("push");
const signed = (id: string, token = TOKEN) => githubHeaders(token, push, { delivery: id });

let stack: Stack;
let path: string;
beforeAll(async () => {
  stack = await startStack();
  path = await stack.readyReceiver(NS, "github", {
    type: "github",
    token: TOKEN,
    targets: [{ apiVersion: GIT, kind: "GitRepository", name: "webapp" }],
  });
  expect((await stack.post(path, { headers: signed("delivery-ok"), body: push })).status).toBe(200);
  expect(
    (await stack.post(path, { headers: signed("<img src=x onerror=alert(1)>", "wrong"), body: push })).status,
  ).toBe(400);
  expect((await stack.post("/hook/0000", { body: "{}" })).status).toBe(404);
});
afterAll(() => stack.stop());

async function scrape(url: string | undefined): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

describe("metrics", () => {
  test("Flux's gotk_receiver_* names and labels, and fluxhook's own", async () => {
    const text = await scrape(stack.fluxhook.metricsUrl);
    for (const line of [
      'gotk_receiver_http_request_duration_seconds_count{service="",handler="/hook/",method="POST",code="200"} 1',
      'gotk_receiver_http_request_duration_seconds_count{service="",handler="/hook/",method="POST",code="400"} 1',
      'gotk_receiver_http_request_duration_seconds_count{service="",handler="/hook/",method="POST",code="404"} 1',
      'gotk_receiver_http_response_size_bytes_count{service="",handler="/hook/",method="POST",code="200"} 1',
      // The size of the body answered to the unknown digest, {"status":404,"reason":"no receiver at this path"}.
      'gotk_receiver_http_response_size_bytes_sum{service="",handler="/hook/",method="POST",code="404"} 50',
      'gotk_receiver_http_requests_inflight{service="",handler="/hook/"} 0',
      `fluxhook_deliveries_total{receiver="${NS}/github",type="github",outcome="accepted"} 1`,
      `fluxhook_deliveries_total{receiver="${NS}/github",type="github",outcome="rejected"} 1`,
      'fluxhook_deliveries_total{receiver="",type="",outcome="unknown_path"} 1',
      'fluxhook_annotations_total{kind="GitRepository",outcome="annotated"} 1',
      'fluxhook_receivers{ready="true"} 1',
    ]) {
      expect(text).toContain(line);
    }
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(path.slice("/hook/".length));
  });

  test("a made-up method cannot mint a label value", async () => {
    // Raw HTTP: fetch would not send an unknown method as is.
    const { port } = new URL(stack.fluxhook.receiverUrl);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), "127.0.0.1", () =>
        socket.write(
          `FROBNICATE ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
        ),
      );
      let data = "";
      socket.on("data", (d) => (data += d));
      socket.on("close", () => resolve(data));
      socket.on("error", reject);
    });
    // Bun's parser drops unknown methods without an answer; the label mapping is a second line.
    expect(answer === "" || answer.startsWith("HTTP/1.1 4")).toBe(true);
    const text = await scrape(stack.fluxhook.metricsUrl);
    expect(text).not.toContain("FROBNICATE");
  });

  test("--export-http-path-metrics labels by receiver name, never by digest", async () => {
    await using labelled = await startStack({ exportHttpPathMetrics: true });
    const p = await labelled.readyReceiver(NS, "github", {
      type: "github",
      token: TOKEN,
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "webapp" }],
    });
    await labelled.post(p, { headers: signed("a"), body: push });
    await labelled.post("/hook/ffff", { body: "{}" });
    const text = await scrape(labelled.fluxhook.metricsUrl);
    expect(text).toContain(
      `gotk_receiver_http_request_duration_seconds_count{service="",handler="/hook/${NS}/github",method="POST",code="200"} 1`,
    );
    expect(text).toContain(
      'gotk_receiver_http_request_duration_seconds_count{service="",handler="/hook/unknown",method="POST",code="404"} 1',
    );
    expect(text).not.toContain(p.slice("/hook/".length));
  });
});

describe("recent deliveries", () => {
  test("JSON lists each receiver's deliveries, newest first, without secrets", async () => {
    const res = await fetch(`${stack.fluxhook.healthUrl}/deliveries?format=json`);
    const body = await res.json();
    expect(body.receivers.map((r: any) => r.receiver)).toEqual([`${NS}/github`]);
    const [refused, accepted] = body.receivers[0].deliveries;
    expect(accepted).toMatchObject({
      event: "push",
      deliveryId: "delivery-ok",
      status: 200,
      outcome: "accepted",
      reason: "1 of 1 target annotated",
      targets: [`GitRepository/${NS}/webapp:annotated`],
    });
    expect(refused).toMatchObject({
      status: 400,
      outcome: "rejected",
      reason: "signature mismatch (X-Hub-Signature-256)",
      targets: [],
    });
    expect(JSON.stringify(body)).not.toContain(TOKEN);
  });

  const chromiumPath = "/usr/bin/chromium";
  // .ci/run installs Debian's chromium; on a developer machine without it the page test is skipped.
  test.skipIf(!existsSync(chromiumPath) && !process.env.CI)(
    "the page renders in Chromium, with sender-controlled text escaped",
    async () => {
      const browser: Browser = await chromium.launch({
        executablePath: chromiumPath,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });
      try {
        const page = await browser.newPage();
        const res = await page.goto(`${stack.fluxhook.healthUrl}/deliveries`);
        expect(res?.status()).toBe(200);
        expect(await page.locator("h2").first().textContent()).toContain(`${NS}/github`);
        const rows = page.locator("tbody tr");
        expect(await rows.count()).toBe(2);
        expect(await rows.nth(1).locator("td.status").textContent()).toBe("200");
        expect(await rows.nth(0).textContent()).toContain("<img src=x onerror=alert(1)>");
        // The delivery id was shown as text, not turned into an element.
        expect(await page.locator("tbody img").count()).toBe(0);
      } finally {
        await browser.close();
      }
    },
  );
});
