/**
 * Writes `count` log lines through stderrLines, as fluxhook's logger does, after touching
 * process.stderr (which makes Bun set fd 2 non-blocking, as libraries do in the server), then
 * exits. stderr-lines.test.ts reads them slowly.
 */
import { stderrLines } from "../../server/runtime/log";

void process.stderr;
const count = Number(process.argv[2]);
const stderr = stderrLines();
process.on("exit", stderr.flushAtExit);
// As main.ts reports them: one line, once stderr takes lines again.
stderr.onDropped((lines) => stderr.write(JSON.stringify({ dropped: lines })));
let n = 0;
const burst = () => {
  for (let i = 0; i < 500 && n < count; i++) stderr.write(JSON.stringify({ n: n++, pad: "p".repeat(200) }));
  if (n < count) setTimeout(burst, 2);
};
burst();
