import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Dispatcher } from 'undici';
import { CryomixClient, type ClientOptions } from '../../src/cryomix/client.js';

export type Handler = (request: IncomingMessage, response: ServerResponse) => void;

export interface LocalServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** TCP connections accepted so far: a redirect target proves it was never contacted. */
  connections(): number;
  /** Replaces how the next requests are answered. */
  handle(handler: Handler): void;
  close(): Promise<void>;
}

/** A real HTTP server on loopback whose behaviour each test sets. */
export async function startLocalServer(initial: Handler = notSet): Promise<LocalServer> {
  let handler = initial;
  let connections = 0;
  const server: Server = createServer((request, response) => handler(request, response));
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    connections: () => connections,
    handle: (next) => {
      handler = next;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

function notSet(_request: IncomingMessage, response: ServerResponse): void {
  response.writeHead(500).end('no handler set for this test');
}

/** Drains a request body and resolves with it. */
export async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function sendJson(response: ServerResponse, statusCode: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(statusCode, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

/** A client of the API served at `origin`, with the options most tests share; tests override what they exercise. */
export function clientOf(origin: string, apiKey: string, dispatcher: Dispatcher, overrides: Partial<ClientOptions> = {}): CryomixClient {
  return new CryomixClient({
    baseUrl: origin,
    apiKey,
    origin: 'https://studio.example.com',
    uploadOrigins: ['https://storage.googleapis.com'],
    requestTimeoutMs: 2_000,
    dispatcher,
    ...overrides,
  });
}
