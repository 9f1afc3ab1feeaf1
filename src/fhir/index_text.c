/*
 * index_text.c - the full text of a resource for _content and _text: its string values, and
 * its narrative without markup.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "fhir/index.h"

/* Appends the code point cp as UTF-8 (a replacement character when it is not valid). */
static void add_utf8(buf_t *out, unsigned long cp)
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_add(out, b, n);
}

/* Decodes the character reference at s (after '&'); returns its length up to ';' included, or
 * 0 when it is not one. */
static size_t entity(const char *s, buf_t *out)
{
    static const struct {
        const char *name;
        unsigned long cp;
    } named[] = {{"amp", '&'},  {"lt", '<'},    {"gt", '>'},
                 {"quot", '"'}, {"apos", '\''}, {"nbsp", 0xA0}};
    const char *semi = memchr(s, ';', strnlen(s, 12));
    if (!semi || semi == s)
        return 0;
    size_t len = (size_t)(semi - s);
    if (s[0] == '#') {
        char *end;
        unsigned long cp =
            (s[1] == 'x' || s[1] == 'X') ? strtoul(s + 2, &end, 16) : strtoul(s + 1, &end, 10);
        if (end != semi)
            return 0;
        add_utf8(out, cp);
        return len + 1;
    }
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        if (strlen(named[i].name) == len && memcmp(s, named[i].name, len) == 0) {
            add_utf8(out, named[i].cp);
            return len + 1;
        }
    }
    return 0;
}

/* XHTML to text: tags become a space, comments and CDATA markers go, references decoded. */
static void strip_markup(const char *s, buf_t *out)
{
    while (*s) {
        if (*s == '<') {
            const char *end = strncmp(s, "<!--", 4) == 0 ? strstr(s + 4, "-->") : strchr(s, '>');
            if (!end)
                break;
            s = end + (strncmp(s, "<!--", 4) == 0 ? 3 : 1);
            if (out->len && out->ptr[out->len - 1] != ' ')
                buf_addch(out, ' ');
            continue;
        }
        if (*s == '&') {
            size_t n = entity(s + 1, out);
            if (n) {
                s += n + 1;
                continue;
            }
        }
        buf_addch(out, *s++);
    }
}

/* Cuts out at `max` bytes, at a character boundary. */
static void cut(buf_t *out, size_t max)
{
    if (out->len <= max)
        return;
    size_t n = max;
    while (n > 0 && ((unsigned char)out->ptr[n] & 0xC0) == 0x80)
        n--;
    buf_setlen(out, n);
}

static void add_strings(const json_t *v, bool root, buf_t *content, buf_t *narrative)
{
    if (content->len > FHIR_INDEX_MAX_TEXT)
        return;
    if (json_is_string(v)) {
        if (content->len)
            buf_addch(content, '\n');
        buf_add(content, json_string_value(v), json_string_length(v));
    } else if (json_is_array(v)) {
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item) add_strings(item, false, content, narrative);
    } else if (json_is_object(v)) {
        const char *key;
        const json_t *member;
        json_object_foreach((json_t *)v, key, member)
        {
            if (root && strcmp(key, "resourceType") == 0)
                continue;
            const json_t *div = root && strcmp(key, "text") == 0 && json_is_object(member)
                                    ? json_object_get(member, "div")
                                    : NULL;
            if (json_is_string(div)) {
                size_t start = narrative->len;
                strip_markup(json_string_value(div), narrative);
                if (content->len)
                    buf_addch(content, '\n');
                buf_add(content, narrative->ptr + start, narrative->len - start);
                const char *k;
                const json_t *m;
                json_object_foreach((json_t *)member, k, m)
                {
                    if (strcmp(k, "div") != 0)
                        add_strings(m, false, content, narrative);
                }
                continue;
            }
            add_strings(member, false, content, narrative);
        }
    }
}

static const char *finish(buf_t *b, arena_t *arena)
{
    cut(b, FHIR_INDEX_MAX_TEXT);
    size_t i = 0;
    while (i < b->len && (b->ptr[i] == ' ' || b->ptr[i] == '\n'))
        i++;
    const char *text = i < b->len ? arena_strndup(arena, b->ptr + i, b->len - i) : NULL;
    buf_release(b);
    return text;
}

void fhir_index_text(const json_t *resource, arena_t *arena, const char **out_content,
                     const char **out_narrative)
{
    buf_t content = BUF_INIT, narrative = BUF_INIT;
    add_strings(resource, true, &content, &narrative);
    *out_content = finish(&content, arena);
    *out_narrative = finish(&narrative, arena);
}
