// Types of durable.js, the JavaScript client of pg_durable_objects.

export interface ConnectOptions {
    /** Query parameters added to the URL; the object's $connect sees them in args.query. */
    params?: Record<string, string | number | boolean>;
    /** WebSocket subprotocols. */
    protocols?: string | string[];
    /** A WebSocket constructor; defaults to globalThis.WebSocket (pass the "ws" package in Node 20). */
    WebSocket?: any;
    /** Milliseconds before a call is rejected with code TIMEOUT (0 = never); default 10000. */
    callTimeout?: number;
    /** Calls made while disconnected wait for the socket (true, default) or are rejected at once. */
    queue?: boolean;
    /** Reconnect after the socket drops (default true); never after a 4000-4999 refusal. */
    reconnect?: boolean;
    /** Backoff: first delay, largest delay (ms) and jitter (0..1). */
    minDelay?: number;
    maxDelay?: number;
    jitter?: number;
}

export interface CloseInfo {
    code: number;
    reason: string;
    willReconnect: boolean;
}

/** code: a SQLSTATE from the object, or CLOSED, TIMEOUT, NOT_CONNECTED. */
export class DurableError extends Error {
    code: string;
    constructor(code: string, message: string);
}

export class DurableSocket {
    readonly url: string;
    readonly state: 'connecting' | 'open' | 'reconnecting' | 'closed';
    /** seq of the last event received. */
    readonly lastSeq: number;
    call<T = unknown>(method: string, args?: unknown, options?: { timeout?: number }): Promise<T>;
    send(data: unknown): void;
    on(name: 'event', fn: (data: any, seq: number) => void): () => void;
    on(name: 'open' | 'reconnect', fn: () => void): () => void;
    on(name: 'close', fn: (info: CloseInfo) => void): () => void;
    on(name: 'error', fn: (error: Error) => void): () => void;
    on(name: 'frame', fn: (frame: unknown) => void): () => void;
    onReconnect(fn: (socket: DurableSocket) => unknown): () => void;
    ready(): Promise<void>;
    close(code?: number, reason?: string): void;
}

export function connect(url: string, options?: ConnectOptions): DurableSocket;
export function objectUrl(base: string, className: string, id: string): string;
