/**
 * Loopback-only test servers for the URL fetcher: an HTTP server with one route per behaviour, and a
 * raw TCP server for responses Node's HTTP server refuses to send (a Content-Length that lies).
 * Both bind 127.0.0.1 and count what reaches them, so a test can assert that a refused URL caused
 * no request at all.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

export interface TestServer {
  port: number;
  /** Requests received, by path. */
  hits: string[];
  /** Host headers received. */
  hosts: string[];
  close: () => Promise<void>;
}

/** `image` at /img.jpg, each of `files` at /files/<name>, and the behaviours below. */
export async function startHttpServer(image: Buffer, files: Record<string, Buffer> = {}): Promise<TestServer> {
  const hits: string[] = [];
  const hosts: string[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    hits.push(path);
    hosts.push(req.headers.host ?? '');
    const port = (server.address() as AddressInfo).port;
    const redirect = (to: string) => res.writeHead(302, { location: to }).end();
    if (path === '/img.jpg') return res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': image.length }).end(image);
    const file = path.startsWith('/files/') ? files[decodeURIComponent(path.slice(7))] : undefined;
    if (file) return res.writeHead(200, { 'content-length': file.length }).end(file);
    if (path === '/redirect') return redirect('/img.jpg');
    if (path === '/loop') return redirect('/loop');
    const chain = /^\/chain\/(\d+)$/.exec(path);
    if (chain) return redirect(Number(chain[1]) > 0 ? `/chain/${Number(chain[1]) - 1}` : '/img.jpg');
    if (path === '/to-metadata') return redirect('http://169.254.169.254/latest/meta-data/');
    if (path === '/to-literal') return redirect(`http://127.0.0.1:${port}/img.jpg`);
    if (path === '/to-decimal') return redirect(`http://2130706433:${port}/img.jpg`);
    if (path === '/to-file') return redirect('file:///etc/passwd');
    if (path === '/no-location') return res.writeHead(302).end();
    if (path === '/missing') return res.writeHead(404).end();
    if (path === '/unavailable') return res.writeHead(503).end();
    if (path === '/declared-huge') {
      // Headers only: a client that trusts Content-Length refuses before any body byte.
      res.writeHead(200, { 'content-length': 10 * 1024 * 1024 });
      return res.flushHeaders();
    }
    if (path === '/chunked-huge') {
      // No Content-Length; at most 40 × 64 KiB, stopped when the client goes away.
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      const chunk = Buffer.alloc(64 * 1024, 0xab);
      let sent = 0;
      const pump = () => {
        while (sent < 40 && !res.destroyed) {
          sent++;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    if (path === '/slow') {
      // One byte every 100 ms, at most 100 bytes.
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      let n = 0;
      const t = setInterval(() => {
        if (res.destroyed || ++n > 100) {
          clearInterval(t);
          timers.delete(t);
          return void res.end();
        }
        res.write('x');
      }, 100);
      timers.add(t);
      return;
    }
    if (path === '/silent') return; // never answers; closed with the server
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    hosts,
    close: async () => {
      for (const t of timers) clearInterval(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Answers every connection with `head` (status line and headers) and then `body`, and closes. */
export async function startRawServer(head: string, body: Buffer): Promise<TestServer> {
  const hits: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', (d) => {
      hits.push(d.toString('latin1').split(' ')[1] ?? '');
      socket.write(head.replace(/\n/g, '\r\n') + '\r\n');
      socket.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    hosts: [],
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
