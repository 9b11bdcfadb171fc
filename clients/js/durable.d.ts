// Types of durable.js, the JavaScript client of pg_durable_objects.

export interface ConnectOptions {
    /** Query parameters added to the URL; the object's $connect sees them in args.query. */
    params?: Record<string, string | number | boolean>;
    /** WebSocket subprotocols. */
    protocols?: string | string[];
    /** A WebSocket constructor; defaults to globalThis.WebSocket (pass the "ws" package in Node 20). */
    WebSocket?: any;
    /** Milliseconds before a call (and ready()) is rejected with code TIMEOUT (0 = never); default 10000. */
    callTimeout?: number;
    /** Calls made while disconnected wait for the socket (true, default) or are rejected at once. */
    queue?: boolean;
    /** Reconnect after a transient failure (default true); never after a permanent one. */
    reconnect?: boolean;
    /** Reconnect with ?since=lastSeq so missed events are replayed (default true). */
    resume?: boolean;
    /** The last seq the app saw earlier (e.g. kept in sessionStorage): resume from it on the first connect too. */
    since?: number;
    /** Backoff: first delay, largest delay (ms) and jitter (0..1). */
    minDelay?: number;
    maxDelay?: number;
    jitter?: number;
}

export interface CloseInfo {
    code: number;
    reason: string;
    willReconnect: boolean;
    /** Why the handle stopped (willReconnect false), else null. */
    error: DurableError | null;
}

export interface GapInfo {
    /** The oldest seq the server still has (or its next seq); the events from it on follow. */
    oldest: number;
    /** The last seq the handle had seen: the events after it and before oldest are lost. */
    since: number | null;
}

/** Data a handler sent: JSON for durable.broadcast(jsonb), a Uint8Array for durable.broadcast(bytea). */
export type EventData = any;

/**
 * code: a SQLSTATE (from the object, or the gateway's answer to a refused upgrade), a close
 * code as a string ("4401") when the object refused or closed the socket, "HTTP_<status>" for
 * an upgrade refused without our JSON body, or CLOSED, TIMEOUT, NOT_CONNECTED.
 */
export class DurableError extends Error {
    code: string;
    /** The HTTP status of a refused WebSocket upgrade (404, 403, ...). */
    status?: number;
    /** The WebSocket close code that stopped the handle. */
    closeCode?: number;
    constructor(code: string, message: string, extra?: { status?: number; closeCode?: number });
}

export type BinaryData = ArrayBuffer | ArrayBufferView | Blob;

export class DurableSocket {
    constructor(url: string, options?: ConnectOptions);
    /** The URL with params (without since). */
    readonly url: string;
    readonly state: 'connecting' | 'open' | 'reconnecting' | 'closed';
    /** seq of the last event received (null until the first one, unless options.since). */
    readonly lastSeq: number | null;
    /** Why the handle stopped for good (state 'closed'), else null. */
    readonly error: DurableError | null;
    call<T = unknown>(method: string, args?: unknown, options?: { timeout?: number }): Promise<T>;
    /** JSON text frame, or a binary frame for ArrayBuffer / typed arrays / DataView / Blob. */
    send(data: unknown | BinaryData): void;
    /** data is a Uint8Array for a binary event. */
    on(name: 'event', fn: (data: EventData, seq: number) => void): () => void;
    on(name: 'gap', fn: (info: GapInfo) => void): () => void;
    on(name: 'open' | 'reconnect', fn: () => void): () => void;
    on(name: 'close', fn: (info: CloseInfo) => void): () => void;
    on(name: 'error', fn: (error: Error) => void): () => void;
    on(name: 'frame', fn: (frame: unknown) => void): () => void;
    onReconnect(fn: (socket: DurableSocket) => unknown): () => void;
    /** Resolves when $connect accepted the socket; rejects when the handle stops, or with TIMEOUT. */
    ready(options?: { timeout?: number }): Promise<void>;
    close(code?: number, reason?: string): void;
}

export function connect(url: string, options?: ConnectOptions): DurableSocket;
export function objectUrl(base: string, className: string, id: string,
                          options?: { database?: string }): string;
