// Types of bin/build.mjs, for the TypeScript that imports it.
export declare const ROOT: string;
/** The first source newer than the last build (or the reason there is none), else undefined. */
export declare function staleBecause(): string | undefined;
/** Brings dist/ up to date with harness/ when it can; throws when there is no usable build. */
export declare function ensureBuilt(): void;
