/**
 * The gateway on a socket: @hono/node-server's listener for every route, with the warm-tile fast path
 * tried first (routes/tile-fast-path.ts). main.ts and the tests that need a real socket both start it
 * here, so what they test is what production runs.
 */
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createGatewayHttp, type AppOptions, type Services } from './app.js';

export interface ServeOptions extends AppOptions {
  port: number;
  hostname: string;
}

export function serveGateway(services: Services, { port, hostname, ...appOptions }: ServeOptions, onListening?: (address: AddressInfo) => void): ServerType {
  const { app, serveWarmTile } = createGatewayHttp(services, appOptions);
  return serve(
    {
      fetch: app.fetch,
      port,
      hostname,
      createServer: ((options: object, honoListener: RequestListener) =>
        createServer(options, (req: IncomingMessage, res: ServerResponse) => {
          if (!serveWarmTile(req, res)) honoListener(req, res);
        })) as typeof createServer,
    },
    onListening,
  );
}
