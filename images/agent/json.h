/* Tiny JSON support for the guest agent: a parser for flat request objects
 * (string, integer, number, boolean and null values only) and an append-only
 * writer for responses. */
#ifndef BPF_AGENT_JSON_H
#define BPF_AGENT_JSON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum jtype { J_NULL, J_BOOL, J_INT, J_NUM, J_STR };

struct jfield {
	char *key;
	enum jtype type;
	long long i;   /* J_INT, J_BOOL (0/1); J_NUM: truncated value */
	double d;      /* J_NUM, J_INT */
	char *s;       /* J_STR: NUL-terminated (may also contain NULs) */
	size_t slen;   /* J_STR: length in bytes */
};

struct jobj {
	struct jfield *f;
	int n, cap;
};

/* Parses one flat JSON object. Returns 0, or -1 with a message in err. */
int json_parse_flat(const char *text, size_t len, struct jobj *o, char *err, size_t errlen);
void json_free(struct jobj *o);
/* Last field with this key, or NULL. A field whose value is null is returned too. */
const struct jfield *json_get(const struct jobj *o, const char *key);

/* Growable output buffer. */
struct jbuf {
	char *p;
	size_t len, cap;
};

void jb_reset(struct jbuf *b);
void jb_free(struct jbuf *b);
void jb_putn(struct jbuf *b, const char *s, size_t n);
void jb_puts(struct jbuf *b, const char *s);
void jb_putc(struct jbuf *b, char c);
void jb_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jb_vprintf(struct jbuf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* A JSON string literal, escaped. Valid UTF-8 passes through; invalid bytes become \u00XX. */
void jb_str(struct jbuf *b, const char *s, size_t n);
void jb_cstr(struct jbuf *b, const char *s);
/* Lowercase hex string literal of n bytes. */
void jb_hex(struct jbuf *b, const void *data, size_t n);
/* ,"key": helpers for result fields (always preceded by a comma). */
void jb_key(struct jbuf *b, const char *key);
void jb_kstr(struct jbuf *b, const char *key, const char *val);
void jb_kint(struct jbuf *b, const char *key, long long val);
void jb_kbool(struct jbuf *b, const char *key, int val);
/* ,"key":[v0,v1,...] */
void jb_ku32s(struct jbuf *b, const char *key, const uint32_t *v, int n);

/* Hex decoding: returns number of bytes, or -1 on bad input. out must hold len/2 bytes. */
long hex_decode(const char *s, size_t len, uint8_t *out);

#endif
