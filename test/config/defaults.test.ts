import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';

describe('config defaults', () => {
  it('fills every omitted section from SPEC', () => {
    expect(parseConfig('folders:\n  - path: /srv/exports\n', '/etc/cryomix-watch')).toEqual({
      api: {
        baseUrl: 'https://platform.cryo-mix.com/',
        uploadOrigins: ['https://storage.googleapis.com/'],
        urlExpirySeconds: 900,
        requestTimeoutSeconds: 30,
        authRecheckSeconds: 60,
      },
      state: { database: '/var/lib/cryomix-watch/state.db' },
      uploads: {
        concurrency: 2,
        minBytes: 1_000_000,
        maxBytes: 1_073_741_824,
        stallTimeoutSeconds: 60,
        retry: { initialDelaySeconds: 2, maxDelaySeconds: 300 },
        shutdownGraceSeconds: 20,
        maxBytesPerSecond: null,
      },
      downloads: { maxBytesPerSecond: null },
      folders: [
        {
          path: '/srv/exports',
          recursive: true,
          settleSeconds: 5,
          polling: 'auto',
          pollIntervalSeconds: 10,
          rescanIntervalSeconds: 600,
          answerTimeoutSeconds: 30,
          ignore: [],
          afterUpload: 'keep',
        },
      ],
      log: { level: 'info', summaryMinutes: 5 },
    });
  });

  it('treats an empty section as all defaults', () => {
    const config = parseConfig('api:\nuploads:\n  retry:\nfolders:\n  - path: /srv/a\n', '/');
    expect(config.api.baseUrl).toBe('https://platform.cryo-mix.com/');
    expect(config.uploads.retry).toEqual({ initialDelaySeconds: 2, maxDelaySeconds: 300 });
  });

  it('keeps the SPEC example as written', () => {
    const config = parseConfig(
      `
api:
  baseUrl: https://platform.cryo-mix.com
  origin: https://studio.example.com
  uploadOrigins: [https://storage.googleapis.com]
folders:
  - path: /srv/exports
    settleSeconds: 0.2
    ignore: ["**/scratch/**"]
    afterUpload: move
    moveTo: /srv/exports/uploaded
    mastering:
      settings: { meq: 5, mca: 1 }
      outputDir: /srv/masters
log: { level: debug }
http: { listen: 127.0.0.1:9464 }
`,
      '/',
    );
    expect(config.api.origin).toBe('https://studio.example.com');
    expect(config.folders[0]).toMatchObject({ settleSeconds: 0.2, moveTo: '/srv/exports/uploaded' });
    expect(config.folders[0]?.mastering).toEqual({
      settings: { meq: 5, mca: 1 },
      outputDir: '/srv/masters',
      files: ['FinalMaster.wav', 'MasteringReport.json'],
      pollIntervalSeconds: 5,
      timeoutMinutes: 240,
    });
    expect(config.http).toEqual({ listen: { host: '127.0.0.1', port: 9464 } });
    expect(config.log.level).toBe('debug');
  });

  it('accepts plain http to a loopback API, as the sandbox needs', () => {
    const config = parseConfig(
      'api:\n  baseUrl: http://127.0.0.1:8080\n  uploadOrigins: [http://localhost:8080/storage]\nfolders: [{ path: /a }]\n',
      '/',
    );
    expect(config.api.baseUrl).toBe('http://127.0.0.1:8080/');
    expect(config.api.uploadOrigins).toEqual(['http://localhost:8080/storage/']);
  });
});
