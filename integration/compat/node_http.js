// node's http with keep-alive, for integration/tests/apps/t_node_http.sh.
//   node node_http.js serve PORT   the server: GET /bytes/N answers N bytes
//       (byte i is i*7 mod 251), POST /echo answers its body, GET /conns
//       the number of connections accepted so far, GET /unlisten closes the
//       listener (server.close(): libuv closes its fd at once) and then
//       answers; ends on SIGTERM (status 0)
//   node node_http.js client PORT  the client: an Agent with keepAlive and 4
//       sockets at most; 400 GETs at once (sizes 0 to 199,999), each body
//       checked; an 8 MiB POST /echo, sha256 equal; then GET /conns must say
//       4: every request went over the same 4 kept-alive connections; then
//       GET /unlisten, after which a new connection must be refused
//       (ECONNREFUSED), as it is once a TCP listener is closed
'use strict';
const http = require('http');
const net = require('net');
const crypto = require('crypto');
const [mode, portArg] = process.argv.slice(2);
const port = Number(portArg);

function pattern(n) {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 7) % 251;
    return b;
}

if (mode === 'serve') {
    let conns = 0;
    const server = http.createServer((req, res) => {
        if (req.method === 'POST' && req.url === '/echo') {
            const parts = [];
            req.on('data', (d) => parts.push(d));
            req.on('end', () => res.end(Buffer.concat(parts)));
            return;
        }
        const m = /^\/bytes\/(\d+)$/.exec(req.url);
        if (m) return res.end(pattern(Number(m[1])));
        if (req.url === '/conns') return res.end(String(conns));
        if (req.url === '/unlisten') {
            server.close();
            return res.end('unlistened');
        }
        res.statusCode = 404;
        res.end();
    });
    server.keepAliveTimeout = 60000;
    server.on('connection', () => conns++);
    server.listen(port, '127.0.0.1', () => console.log('listening on ' + port));
    process.on('SIGTERM', () => {
        server.close(() => process.exit(0));
        server.closeAllConnections();
    });
} else if (mode === 'client') {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const request = (method, path, body) => new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method, path, agent }, (res) => {
            const parts = [];
            res.on('data', (d) => parts.push(d));
            res.on('end', () => res.statusCode === 200 ? resolve(Buffer.concat(parts))
                : reject(new Error(path + ': status ' + res.statusCode)));
            res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
    });
    (async () => {
        const sizes = [];
        for (let i = 0; i < 400; i++) sizes.push((i * 7919) % 200000);
        const bodies = await Promise.all(sizes.map((n) => request('GET', '/bytes/' + n)));
        bodies.forEach((b, i) => {
            if (!b.equals(pattern(sizes[i]))) throw new Error('GET /bytes/' + sizes[i] + ': wrong body');
        });
        console.log('ok: 400 GETs over keep-alive, every body exact');
        const big = crypto.randomBytes(8 << 20);
        const echoed = await request('POST', '/echo', big);
        const h = (b) => crypto.createHash('sha256').update(b).digest('hex');
        if (h(echoed) !== h(big)) throw new Error('POST /echo: sha256 differs (' + echoed.length + ' bytes)');
        console.log('ok: 8 MiB POST echoed, sha256 equal');
        const conns = Number(await request('GET', '/conns'));
        if (conns !== 4) throw new Error('the server accepted ' + conns + ' connections, want 4 kept alive');
        console.log('ok: 402 requests over the same 4 kept-alive connections');
        const said = String(await request('GET', '/unlisten'));
        if (said !== 'unlistened') throw new Error('GET /unlisten said ' + said);
        const refused = await new Promise((resolve) => {
            const c = net.connect(port, '127.0.0.1');
            const t = setTimeout(() => { c.destroy(); resolve('no answer within 20 s'); }, 20000);
            c.on('connect', () => { clearTimeout(t); c.destroy(); resolve('connected'); });
            c.on('error', (e) => { clearTimeout(t); resolve(e.code); });
        });
        if (refused !== 'ECONNREFUSED')
            throw new Error('a connect after server.close(): ' + refused + ', want ECONNREFUSED');
        console.log('ok: after server.close() a new connect is refused (ECONNREFUSED)');
        agent.destroy();
    })().catch((e) => { console.error('FAIL: ' + e.message); process.exit(1); });
} else {
    console.error('usage: node node_http.js serve|client PORT');
    process.exit(2);
}
