import { basename, dirname } from 'node:path';
import { formatBytes, relativeTime } from '../report/format.js';
import { jobDetail, jobPercent, type JobView } from '../report/jobView.js';
import { STATES, type State } from '../store/states.js';
import { bandwidthLine, type BandwidthState } from '../pipeline/bandwidth.js';

export interface StatusPageData {
  now: number;
  /** Empty when all is well (see healthProblems). */
  problems: string[];
  folders: string[];
  counts: Record<State, number>;
  /** Most recently changed first. */
  files: JobView[];
  /** The caps in force; absent outside the daemon. */
  bandwidth?: BandwidthState;
}

/** How often the page reloads itself: often enough to watch an upload move, rarely enough to cost nothing. */
export const REFRESH_SECONDS = 5;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** File names come from whoever writes into the watched folder: never trust them as HTML. */
function escape(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char] ?? char);
}

const TONE: Partial<Record<State, string>> = {
  done: 'ok',
  failed: 'bad',
  rejected: 'bad',
  retrying: 'warn',
  uploading: 'busy',
  mastering: 'busy',
  downloading: 'busy',
};

function fileRow(file: JobView, now: number): string {
  const percent = jobPercent(file);
  const bar = percent === undefined ? '' : `<progress max="100" value="${percent}">${percent}%</progress>`;
  return `<li class="file ${TONE[file.state] ?? ''}">
<div class="top"><span class="name">${escape(basename(file.path))}</span><span class="state">${file.state}</span></div>
<div class="meta">${escape(dirname(file.path))} · ${formatBytes(file.size)} · ${relativeTime(Date.parse(file.updatedAt), now)}${file.host === null ? '' : ` · on ${escape(file.host)}`}</div>
${bar}<div class="detail">${escape(jobDetail(file, now))}</div>
</li>`;
}

/**
 * The read-only page at `/`: one glance answers "what happened to my
 * file?". Server-rendered, no script, no external resource, so it works on
 * a phone on the studio's Wi-Fi and under a strict Content-Security-Policy.
 */
export function renderStatusPage(data: StatusPageData): string {
  const health = data.problems.length === 0
    ? '<p class="banner ok">Working: watching for new mixes.</p>'
    : `<ul class="banner bad">${data.problems.map((problem) => `<li>${escape(problem)}</li>`).join('')}</ul>`;
  const counts = STATES.filter((state) => data.counts[state] > 0)
    .map((state) => `<li class="${TONE[state] ?? ''}"><b>${data.counts[state]}</b> ${state}</li>`)
    .join('');
  const files = data.files.length === 0 ? '<p>No files seen yet. Drop a WAV or MP3 into a watched folder.</p>' : `<ul class="files">${data.files.map((file) => fileRow(file, data.now)).join('')}</ul>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${REFRESH_SECONDS}">
<title>cryomix-watch</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#222;background:#fafafa}
h1{font-size:1.3rem;margin:0 0 .5rem}
.banner{padding:.6rem .8rem;border-radius:.4rem;margin:.5rem 0;list-style:none}
.banner.ok{background:#e3f4e3}.banner.bad{background:#fde2e2}
.counts{display:flex;flex-wrap:wrap;gap:.4rem;padding:0;list-style:none}
.counts li{background:#eee;border-radius:1rem;padding:.1rem .7rem}
.files{padding:0;list-style:none}
.file{background:#fff;border:1px solid #ddd;border-left:.35rem solid #bbb;border-radius:.4rem;padding:.5rem .7rem;margin:.4rem 0}
.ok{border-left-color:#3a3}.bad{border-left-color:#c33}.warn{border-left-color:#d90}.busy{border-left-color:#38c}
.top{display:flex;justify-content:space-between;gap:.5rem}
.name{font-weight:600;overflow-wrap:anywhere}.state{white-space:nowrap}
.meta,.folders,.limit{color:#666;font-size:.85rem;overflow-wrap:anywhere}.detail{overflow-wrap:anywhere}
progress{width:100%}
</style>
</head>
<body>
<h1>cryomix-watch</h1>
${health}
<p class="folders">Watching: ${data.folders.map(escape).join(', ')}</p>
${data.bandwidth ? `<p class="limit">${escape(bandwidthLine(data.bandwidth, data.now))}</p>` : ''}
<ul class="counts">${counts}</ul>
${files}
<p class="meta">Updated ${new Date(data.now).toLocaleString('en-GB', { timeZoneName: 'short' })}; refreshes every ${REFRESH_SECONDS} s.</p>
</body>
</html>
`;
}
