import { connect, createServer, type Socket } from 'node:net';
import { afterEach } from 'vitest';

/**
 * A TCP proxy on 127.0.0.1 in front of one server, which a test can cut
 * between its clients and the server, and mend: one daemon's network to
 * its database, say, while the other daemons reach the database directly.
 */
export interface TcpProxy {
  /** Where clients connect instead of the server. */
  readonly port: number;
  /**
   * Resets every connection through the proxy, and each new one as it
   * arrives, until `restore`: the client sees ECONNRESET at once and
   * cannot get back through.
   */
  sever(): void;
  /**
   * A network partition: nothing fails, nothing arrives. Connections stay
   * open but carry nothing either way, and new ones are accepted but not
   * forwarded, until `restore` delivers what was held back.
   */
  partition(): void;
  /** Forwards again: new connections after `sever`, everything held back after `partition`. */
  restore(): void;
  close(): Promise<void>;
}

/** One client's connection, and the server's once it is made; bytes held back while partitioned. */
interface Link {
  client: Socket;
  server?: Socket;
  toServer: Buffer[];
  toClient: Buffer[];
}

/** Starts a proxy to `port` on 127.0.0.1. */
export async function startTcpProxy(port: number): Promise<TcpProxy> {
  const links = new Set<Link>();
  let mode: 'open' | 'severed' | 'partitioned' = 'open';

  const drop = (link: Link) => {
    links.delete(link);
    link.client.destroy();
    link.server?.destroy();
  };
  const flush = (link: Link) => {
    if (link.server === undefined) connectServer(link);
    for (const chunk of link.toServer.splice(0)) link.server!.write(chunk);
    for (const chunk of link.toClient.splice(0)) link.client.write(chunk);
  };
  const connectServer = (link: Link) => {
    const server = connect(port, '127.0.0.1');
    link.server = server;
    server.on('data', (chunk: Buffer) => (mode === 'partitioned' ? link.toClient.push(chunk) : link.client.write(chunk)));
    // Either side ending or failing ends the other: the proxy adds no failure of its own.
    server.on('error', () => drop(link));
    server.on('close', () => drop(link));
  };

  const listener = createServer((client) => {
    if (mode === 'severed') {
      client.resetAndDestroy();
      return;
    }
    const link: Link = { client, toServer: [], toClient: [] };
    links.add(link);
    client.on('data', (chunk: Buffer) => (mode === 'partitioned' || link.server === undefined ? link.toServer.push(chunk) : link.server.write(chunk)));
    client.on('error', () => drop(link));
    client.on('close', () => drop(link));
    if (mode === 'open') connectServer(link);
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', () => resolve());
  });

  return {
    port: (listener.address() as { port: number }).port,
    sever() {
      mode = 'severed';
      for (const link of links) {
        link.client.resetAndDestroy();
        drop(link);
      }
    },
    partition() {
      mode = 'partitioned';
    },
    restore() {
      const wasPartitioned = mode === 'partitioned';
      mode = 'open';
      if (wasPartitioned) for (const link of links) flush(link);
    },
    close() {
      for (const link of links) drop(link);
      return new Promise((resolve) => listener.close(() => resolve()));
    },
  };
}

/** Proxies closed after each test, whatever happened. */
export function useTcpProxies(): (port: number) => Promise<TcpProxy> {
  const proxies: TcpProxy[] = [];
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
  });
  return async (port) => {
    const proxy = await startTcpProxy(port);
    proxies.push(proxy);
    return proxy;
  };
}
