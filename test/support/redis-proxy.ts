import net from 'node:net';
import { TEST_REDIS_URL } from './test-env';

export interface RedisProxy {
  url: string;
  /** From now on, what clients send is held (not lost): their commands wait, as if Redis had stalled. */
  freeze(): void;
  /** Sends what was held, in order, and lets everything through again. */
  thaw(): void;
  close(): Promise<void>;
}

/** A TCP proxy in front of the test Redis, for a process under test that must find Redis stalled at a chosen moment. */
export async function startRedisProxy(): Promise<RedisProxy> {
  const target = new URL(TEST_REDIS_URL);
  let frozen = false;
  const held: Array<() => void> = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) s.on('error', end).on('close', end);
    client.on('data', (chunk) => (frozen ? held.push(() => !upstream.destroyed && upstream.write(chunk)) : upstream.write(chunk)));
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    freeze: () => void (frozen = true),
    thaw: () => {
      frozen = false;
      for (const send of held.splice(0)) send();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
