// Shared by the interop scripts that start pipekit's daemons and talk to them with real clients:
// checks counted and reported, free ports, bounded waits.
import net from 'node:net';

const counts = { passed: 0, failed: 0 };

// Counts a check; a failed one is printed with its detail.
export const check = (name, cond, detail = '') => {
  if (cond) counts.passed++;
  else {
    counts.failed++;
    console.log(`FAIL: ${name} ${detail}`);
  }
};

// Prints "N passed, M failed" and exits 0 only when nothing failed.
export const finish = () => {
  console.log(`${counts.passed} passed, ${counts.failed} failed`);
  process.exit(counts.failed === 0 ? 0 : 1);
};

// A port nothing listens on right now (on 127.0.0.1).
export const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// p, or a rejection naming `what` after ms.
export const withTimeout = (p, ms, what) =>
  Promise.race([p, sleep(ms).then(() => { throw new Error(`timed out: ${what}`); })]);
