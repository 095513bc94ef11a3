// Quoting for shells: guest commands over SSH, and command lines the harness prints.

/** A string as one POSIX shell word, whatever it holds (left bare when that is safe). */
export const shq = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
