// watch_close.mjs URL N SECONDS: open N WebSockets to URL, print "open N" once all are open,
// then "close CODE REASON" for each that closes; exit when all closed or after SECONDS.
// (30_lifecycle.sh: what DROP EXTENSION does to open sockets.)
import WebSocket from 'ws';

const [url, n, seconds] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
let open = 0;
let closed = 0;
setTimeout(() => { console.log(`timeout with ${closed} of ${n} closed`); process.exit(1); }, seconds * 1000);
for (let i = 0; i < n; i++) {
    const ws = new WebSocket(url);
    ws.on('open', () => { if (++open === n) console.log(`open ${n}`); });
    ws.on('error', (e) => console.log(`error ${e.message}`));
    ws.on('close', (code, reason) => {
        console.log(`close ${code} ${reason.toString()}`);
        if (++closed === n) process.exit(0);
    });
}
