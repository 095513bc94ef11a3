/* Tiny JSON support for the guest agent; see json.h. */
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- output buffer ---------- */

static void jb_grow(struct jbuf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		fprintf(stderr, "bpf-agent: out of memory\n");
		abort();
	}
	b->p = p;
	b->cap = cap;
}

void jb_reset(struct jbuf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void jb_free(struct jbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void jb_putn(struct jbuf *b, const char *s, size_t n)
{
	jb_grow(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void jb_puts(struct jbuf *b, const char *s)
{
	jb_putn(b, s, strlen(s));
}

void jb_putc(struct jbuf *b, char c)
{
	jb_putn(b, &c, 1);
}

void jb_vprintf(struct jbuf *b, const char *fmt, va_list ap)
{
	if (!fmt)
		return;
	va_list ap2;
	va_copy(ap2, ap);
	char probe[1];
	int n = vsnprintf(probe, sizeof(probe), fmt, ap2);
	va_end(ap2);
	if (n <= 0)
		return;
	jb_grow(b, (size_t)n);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void jb_printf(struct jbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	jb_vprintf(b, fmt, ap);
	va_end(ap);
}

/* Length of a valid UTF-8 sequence starting at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned int cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

void jb_str(struct jbuf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	jb_grow(b, n + 2);
	jb_putc(b, '"');
	size_t i = 0;
	while (i < n) {
		unsigned char c = u[i];
		/* copy a run of plain characters at once */
		size_t j = i;
		while (j < n && u[j] >= 0x20 && u[j] < 0x80 && u[j] != '"' && u[j] != '\\')
			j++;
		if (j > i) {
			jb_putn(b, s + i, j - i);
			i = j;
			continue;
		}
		switch (c) {
		case '"': jb_puts(b, "\\\""); i++; continue;
		case '\\': jb_puts(b, "\\\\"); i++; continue;
		case '\n': jb_puts(b, "\\n"); i++; continue;
		case '\t': jb_puts(b, "\\t"); i++; continue;
		case '\r': jb_puts(b, "\\r"); i++; continue;
		case '\b': jb_puts(b, "\\b"); i++; continue;
		case '\f': jb_puts(b, "\\f"); i++; continue;
		default: break;
		}
		if (c < 0x20) {
			jb_printf(b, "\\u%04x", c);
			i++;
			continue;
		}
		size_t l = utf8_seq(u + i, n - i);
		if (l) {
			jb_putn(b, s + i, l);
			i += l;
		} else {
			jb_printf(b, "\\u%04x", c);
			i++;
		}
	}
	jb_putc(b, '"');
}

void jb_cstr(struct jbuf *b, const char *s)
{
	if (!s)
		jb_puts(b, "null");
	else
		jb_str(b, s, strlen(s));
}

void jb_hex(struct jbuf *b, const void *data, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *d = data;
	jb_grow(b, 2 * n + 2);
	b->p[b->len++] = '"';
	for (size_t i = 0; i < n; i++) {
		b->p[b->len++] = digits[d[i] >> 4];
		b->p[b->len++] = digits[d[i] & 15];
	}
	b->p[b->len++] = '"';
	b->p[b->len] = '\0';
}

void jb_key(struct jbuf *b, const char *key)
{
	jb_putc(b, ',');
	jb_cstr(b, key);
	jb_putc(b, ':');
}

void jb_kstr(struct jbuf *b, const char *key, const char *val)
{
	jb_key(b, key);
	jb_cstr(b, val);
}

void jb_kint(struct jbuf *b, const char *key, long long val)
{
	jb_key(b, key);
	jb_printf(b, "%lld", val);
}

void jb_kbool(struct jbuf *b, const char *key, int val)
{
	jb_key(b, key);
	jb_puts(b, val ? "true" : "false");
}

void jb_ku32s(struct jbuf *b, const char *key, const uint32_t *v, int n)
{
	jb_key(b, key);
	jb_putc(b, '[');
	for (int i = 0; i < n; i++)
		jb_printf(b, i ? ",%u" : "%u", v[i]);
	jb_putc(b, ']');
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long hex_decode(const char *s, size_t len, uint8_t *out)
{
	if (len % 2)
		return -1;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (long)(len / 2);
}

/* ---------- parser ---------- */

struct parser {
	const char *s;
	size_t n, pos;
	char *err;
	size_t errlen;
};

static int perr(struct parser *p, const char *msg)
{
	snprintf(p->err, p->errlen, "malformed JSON at offset %zu: %s", p->pos, msg);
	return -1;
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static void put_utf8(char *out, size_t *o, unsigned int cp)
{
	if (cp < 0x80) {
		out[(*o)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*o)++] = (char)(0xc0 | (cp >> 6));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		out[(*o)++] = (char)(0xe0 | (cp >> 12));
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*o)++] = (char)(0xf0 | (cp >> 18));
		out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	}
}

static int parse_hex4(struct parser *p, unsigned int *cp)
{
	if (p->pos + 4 > p->n)
		return perr(p, "truncated \\u escape");
	unsigned int v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p->s[p->pos + i]);
		if (h < 0)
			return perr(p, "bad \\u escape");
		v = v << 4 | (unsigned int)h;
	}
	p->pos += 4;
	*cp = v;
	return 0;
}

/* Parses a string at p->pos (which is at the opening quote). */
static int parse_string(struct parser *p, char **out, size_t *outlen)
{
	p->pos++; /* opening quote */
	size_t start = p->pos;
	/* the decoded string is never longer than the encoded one (+4 for safety) */
	size_t end = start;
	while (end < p->n && p->s[end] != '"') {
		if (p->s[end] == '\\')
			end++;
		end++;
	}
	if (end >= p->n)
		return perr(p, "unterminated string");
	char *buf = malloc(end - start + 5);
	if (!buf)
		return perr(p, "out of memory");
	size_t o = 0;
	while (p->pos < p->n) {
		unsigned char c = (unsigned char)p->s[p->pos];
		if (c == '"') {
			p->pos++;
			buf[o] = '\0';
			*out = buf;
			*outlen = o;
			return 0;
		}
		if (c < 0x20) {
			free(buf);
			return perr(p, "control character in string");
		}
		if (c != '\\') {
			buf[o++] = (char)c;
			p->pos++;
			continue;
		}
		p->pos++;
		if (p->pos >= p->n)
			break;
		char e = p->s[p->pos++];
		switch (e) {
		case '"': buf[o++] = '"'; break;
		case '\\': buf[o++] = '\\'; break;
		case '/': buf[o++] = '/'; break;
		case 'b': buf[o++] = '\b'; break;
		case 'f': buf[o++] = '\f'; break;
		case 'n': buf[o++] = '\n'; break;
		case 'r': buf[o++] = '\r'; break;
		case 't': buf[o++] = '\t'; break;
		case 'u': {
			unsigned int cp;
			if (parse_hex4(p, &cp)) {
				free(buf);
				return -1;
			}
			if (cp >= 0xd800 && cp <= 0xdbff && p->pos + 6 <= p->n && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u') {
				unsigned int lo;
				size_t save = p->pos;
				p->pos += 2;
				if (parse_hex4(p, &lo)) {
					free(buf);
					return -1;
				}
				if (lo >= 0xdc00 && lo <= 0xdfff)
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				else
					p->pos = save;
			}
			put_utf8(buf, &o, cp);
			break;
		}
		default:
			free(buf);
			return perr(p, "bad escape");
		}
	}
	free(buf);
	return perr(p, "unterminated string");
}

static int parse_number(struct parser *p, struct jfield *f)
{
	size_t start = p->pos;
	int is_float = 0;
	if (p->s[p->pos] == '-')
		p->pos++;
	if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
		return perr(p, "bad number");
	while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
		p->pos++;
	if (p->pos < p->n && p->s[p->pos] == '.') {
		is_float = 1;
		p->pos++;
		if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
			return perr(p, "bad number");
		while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
			p->pos++;
	}
	if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		is_float = 1;
		p->pos++;
		if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
			return perr(p, "bad number");
		while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
			p->pos++;
	}
	char tmp[64];
	size_t len = p->pos - start;
	if (len >= sizeof(tmp))
		return perr(p, "number too long");
	memcpy(tmp, p->s + start, len);
	tmp[len] = '\0';
	if (!is_float) {
		errno = 0;
		long long v = strtoll(tmp, NULL, 10);
		if (errno == ERANGE)
			return perr(p, "integer out of range");
		f->type = J_INT;
		f->i = v;
		f->d = (double)v;
	} else {
		double d = strtod(tmp, NULL);
		f->type = J_NUM;
		f->d = d;
		f->i = (d > 9.2e18 || d < -9.2e18) ? 0 : (long long)d;
	}
	return 0;
}

static int match_word(struct parser *p, const char *w)
{
	size_t l = strlen(w);
	if (p->pos + l <= p->n && memcmp(p->s + p->pos, w, l) == 0) {
		p->pos += l;
		return 1;
	}
	return 0;
}

static int add_field(struct jobj *o, struct jfield *f)
{
	if (o->n == o->cap) {
		int cap = o->cap ? o->cap * 2 : 16;
		struct jfield *nf = realloc(o->f, (size_t)cap * sizeof(*nf));
		if (!nf)
			return -1;
		o->f = nf;
		o->cap = cap;
	}
	o->f[o->n++] = *f;
	return 0;
}

int json_parse_flat(const char *text, size_t len, struct jobj *o, char *err, size_t errlen)
{
	struct parser p = { .s = text, .n = len, .pos = 0, .err = err, .errlen = errlen };
	memset(o, 0, sizeof(*o));
	skip_ws(&p);
	if (p.pos >= p.n || p.s[p.pos] != '{')
		return perr(&p, "request must be a JSON object");
	p.pos++;
	skip_ws(&p);
	if (p.pos < p.n && p.s[p.pos] == '}') {
		p.pos++;
		goto done;
	}
	for (;;) {
		struct jfield f;
		memset(&f, 0, sizeof(f));
		skip_ws(&p);
		if (p.pos >= p.n || p.s[p.pos] != '"') {
			perr(&p, "expected a string key");
			goto fail;
		}
		size_t klen;
		if (parse_string(&p, &f.key, &klen))
			goto fail;
		skip_ws(&p);
		if (p.pos >= p.n || p.s[p.pos] != ':') {
			free(f.key);
			perr(&p, "expected ':'");
			goto fail;
		}
		p.pos++;
		skip_ws(&p);
		if (p.pos >= p.n) {
			free(f.key);
			perr(&p, "expected a value");
			goto fail;
		}
		char c = p.s[p.pos];
		int rc = 0;
		if (c == '"') {
			f.type = J_STR;
			rc = parse_string(&p, &f.s, &f.slen);
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			rc = parse_number(&p, &f);
		} else if (match_word(&p, "true")) {
			f.type = J_BOOL;
			f.i = 1;
		} else if (match_word(&p, "false")) {
			f.type = J_BOOL;
			f.i = 0;
		} else if (match_word(&p, "null")) {
			f.type = J_NULL;
		} else if (c == '{' || c == '[') {
			snprintf(err, errlen, "field \"%s\": nested objects and arrays are not supported in requests", f.key);
			rc = -1;
		} else {
			rc = perr(&p, "unexpected character");
		}
		if (rc) {
			free(f.key);
			goto fail;
		}
		if (add_field(o, &f)) {
			free(f.key);
			free(f.s);
			perr(&p, "out of memory");
			goto fail;
		}
		skip_ws(&p);
		if (p.pos < p.n && p.s[p.pos] == ',') {
			p.pos++;
			continue;
		}
		if (p.pos < p.n && p.s[p.pos] == '}') {
			p.pos++;
			break;
		}
		perr(&p, "expected ',' or '}'");
		goto fail;
	}
done:
	skip_ws(&p);
	if (p.pos != p.n) {
		perr(&p, "trailing characters after the object");
		goto fail;
	}
	return 0;
fail:
	json_free(o);
	return -1;
}

void json_free(struct jobj *o)
{
	for (int i = 0; i < o->n; i++) {
		free(o->f[i].key);
		free(o->f[i].s);
	}
	free(o->f);
	memset(o, 0, sizeof(*o));
}

const struct jfield *json_get(const struct jobj *o, const char *key)
{
	for (int i = o->n - 1; i >= 0; i--)
		if (strcmp(o->f[i].key, key) == 0)
			return &o->f[i];
	return NULL;
}
