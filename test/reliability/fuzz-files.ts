/**
 * "No file read outside the configured folder", proved from the kernel's side: the folder half of the
 * fuzz runs in a child process under `strace -f -e trace=open,openat,openat2,creat`, and every path the
 * process (and its threads: libuv does file I/O on its thread pool) tried to open, whether the open
 * succeeded or not, is checked against the places a gateway may read: the DICOM folder, the embedding
 * store, the repository (code, node_modules, models, viewer) and the system's own trees. The canary is
 * checked by name as well, because it sits in the temp dir, which is otherwise allowed (tsx's cache).
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';

/** /usr/bin/strace, else strace on PATH; undefined when absent (the check is then skipped, and said so). */
export function findStrace(): string | undefined {
  const dirs = ['/usr/bin', '/bin', ...(process.env.PATH ?? '').split(path.delimiter).filter((d) => path.isAbsolute(d))];
  for (const dir of dirs) {
    const candidate = path.join(dir, 'strace');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * strace's arguments before the traced command. `--seccomp-bpf` stops the child only at the traced
 * calls, so the fuzz runs near full speed; `-s` keeps whole paths (the default cuts them at 32 bytes).
 */
export function straceArgs(logFile: string): string[] {
  return ['-f', '--seccomp-bpf', '-qq', '-s', '65535', '-e', 'trace=open,openat,openat2,creat', '-e', 'signal=none', '-o', logFile];
}

export interface OpenedPath {
  path: string;
  /** The open failed (ENOENT and the like): still an attempt, still checked. */
  failed: boolean;
}

/** strace's C-style escapes back to bytes, then UTF-8. */
function unescape(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const next = text[++i]!;
    const simple: Record<string, number> = { n: 10, t: 9, r: 13, v: 11, f: 12, '\\': 92, '"': 34 };
    if (next in simple) bytes.push(simple[next]!);
    else if (next === 'x') {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (/[0-7]/.test(next)) {
      const octal = /^[0-7]{1,3}/.exec(text.slice(i))![0];
      bytes.push(parseInt(octal, 8));
      i += octal.length - 1;
    } else bytes.push(next.charCodeAt(0));
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Every path opened in an strace log. Relative paths are resolved against `cwd`, and a path relative to
 * a directory descriptor (openat(fd, "name")) against the path that last opened as that descriptor.
 * With -f a call can be split in two lines (`<unfinished ...>`, then `<... openat resumed>`): the path
 * is on the first, the result on the second, joined by thread id.
 */
export function readOpenedPaths(logFile: string, cwd: string): OpenedPath[] {
  const opened: OpenedPath[] = [];
  const descriptors = new Map<string, string>();
  const pending = new Map<string, string>();
  const call = /^(\d+)\s+(?:open|creat|openat2?)\((?:(AT_FDCWD|\d+), )?"((?:[^"\\]|\\.)*)"/;
  const resumed = /^(\d+)\s+<\.\.\. \w+ resumed>.*= (-?\d+)/;
  const finish = (file: string, result: string) => {
    opened.push({ path: file, failed: result.startsWith('-') });
    if (!result.startsWith('-')) descriptors.set(result, file);
  };
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const match = call.exec(line);
    if (match) {
      const [, tid, dirFd, raw] = match;
      const name = unescape(raw!);
      const base = dirFd && dirFd !== 'AT_FDCWD' ? (descriptors.get(dirFd) ?? `<fd ${dirFd}>`) : cwd;
      const file = path.isAbsolute(name) ? path.normalize(name) : base.startsWith('<') ? `${base}/${name}` : path.resolve(base, name);
      const result = / = (-?\d+)/.exec(line.slice(match[0].length))?.[1];
      if (result === undefined) pending.set(tid!, file);
      else finish(file, result);
      continue;
    }
    const later = resumed.exec(line);
    const file = later ? pending.get(later[1]!) : undefined;
    if (later && file !== undefined) {
      pending.delete(later[1]!);
      finish(file, later[2]!);
    }
  }
  for (const file of pending.values()) opened.push({ path: file, failed: true });
  return opened;
}

export interface OpenPolicy {
  /** Trees a gateway may open files in (each a directory; the realpath where it differs too). */
  allowed: readonly string[];
  /** Trees inside an allowed one that must still never be opened (the canary's folder, the temp workDir). */
  forbidden: readonly string[];
  /** Exceptions inside a forbidden tree (the DICOM folder and the store live in the scenario's workDir). */
  allowedInsideForbidden: readonly string[];
  /** Single paths allowed wherever they are (the workDir itself: the store fsyncs the parent of a new folder). */
  allowedExact?: readonly string[];
}

const isInside = (file: string, dir: string) => file === dir || file.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/** The opens that break the policy, distinct and sorted. */
export function findForbiddenOpens(opened: readonly OpenedPath[], policy: OpenPolicy): string[] {
  const bad = new Set<string>();
  for (const { path: file, failed } of opened) {
    if (policy.allowedExact?.includes(file)) continue;
    const inAllowed = policy.allowed.some((dir) => isInside(file, dir));
    const inForbidden = policy.forbidden.some((dir) => isInside(file, dir)) && !policy.allowedInsideForbidden.some((dir) => isInside(file, dir));
    if (!inAllowed || inForbidden) bad.add(`${file}${failed ? ' (attempted, failed)' : ''}`);
  }
  return [...bad].sort();
}
