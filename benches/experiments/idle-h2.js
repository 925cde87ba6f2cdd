// Idle HTTP/2 subscribers, over TLS or with prior knowledge (h2c), for
// idle-transports.sh: one connection per subscriber (what a browser with one
// EventSource to the hub holds), each with one GET of PATH and the headers
// given ("name: value"); once every response head (200 expected) is in,
// waits SETTLE seconds and prints the server's RSS growth per subscriber:
//     <KiB per subscriber> <RSS before KiB> <RSS after KiB>
// Usage: node idle-h2.js https|http PORT PID N SETTLE PATH [HEADER ...]
const http2 = require('http2');
const fs = require('fs');

const [scheme, port, pid, count, settle, path, ...headers] = process.argv.slice(2);
const rss = () => +fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const extra = Object.fromEntries(headers.map((h) => {
  const at = h.indexOf(':');
  return [h.slice(0, at).trim().toLowerCase(), h.slice(at + 1).trim()];
}));

(async () => {
  const before = rss();
  const held = [];
  for (let i = 0; i < +count; i++) {
    await new Promise((resolve, reject) => {
      const session = http2.connect(`${scheme}://127.0.0.1:${port}`, { servername: "localhost", rejectUnauthorized: false });
      session.on('error', (e) => reject(new Error(`subscriber ${i}: ${e.message}`)));
      const stream = session.request({ ':path': path, ...extra });
      stream.on('error', (e) => reject(new Error(`subscriber ${i}: ${e.message}`)));
      stream.on('response', (head) => {
        if (head[':status'] === 200) resolve();
        else reject(new Error(`subscriber ${i}: status ${head[':status']}`));
      });
      held.push(session, stream);
    });
  }
  await sleep(+settle * 1000);
  const after = rss();
  console.log(`${((after - before) / +count).toFixed(2)} ${before} ${after}`);
  process.exit(0);
})().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
