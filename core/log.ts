// One logger for the whole process: readable single lines on stderr, level from DAWNLLM_LOG (debug|info|warn|error).

type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function threshold(): number {
  const env = (process.env.DAWNLLM_LOG ?? 'info').toLowerCase() as Level;
  return order[env] ?? order.info;
}

function emit(level: Level, scope: string, message: string): void {
  if (order[level] < threshold()) return;
  const time = new Date().toISOString().slice(11, 23);
  process.stderr.write(`${time} ${level.toUpperCase().padEnd(5)} [${scope}] ${message}\n`);
}

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function logger(scope: string): Logger {
  return {
    debug: (m) => emit('debug', scope, m),
    info: (m) => emit('info', scope, m),
    warn: (m) => emit('warn', scope, m),
    error: (m) => emit('error', scope, m),
  };
}

export function isDebug(): boolean {
  return threshold() <= order.debug;
}
