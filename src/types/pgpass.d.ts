/** pgpass 1.x (node-postgres's reader of ~/.pgpass) ships no types. */
declare module 'pgpass' {
  interface ConnectionInfo {
    host: string;
    port: number;
    database: string;
    user: string;
  }
  export default function pgpass(connection: ConnectionInfo, callback: (password: string | undefined) => void): void;
}
