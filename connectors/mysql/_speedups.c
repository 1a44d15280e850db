/*
 * Optional compiled row-image reader for connectors/mysql/decoder.py.
 *
 * It reads exactly what the generated Python reader of decoder.py reads, from the same plan
 * (see decoder._fast_spec): every column's raw value as Python's struct module would give it,
 * then either the column's Python converter, or, for the hottest types, the same conversion
 * done here (DATE, DATETIME2, TIMESTAMP2, precise DECIMAL up to 38 digits, binary as base64).
 * Whatever this code does not handle exactly (an impossible date, a zero date, a digit group
 * out of range, a NULL in a NOT NULL column, a truncated event, a codec error) makes it hand
 * the value to the Python converter or fail; on any failure decoder.py decodes the whole event
 * again with the Python reader, which is the reference and gives the precise error. The
 * differential tests in tests/unit/test_mysql_speedups.py and tests/integration/
 * test_mysql_decoder.py compare both readers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { M_SINT = 0, M_UINT = 1, M_F32 = 2, M_F64 = 3, M_FIXED = 4, M_VARBYTES = 5, M_VARSTR = 6 };
enum { F_NONE = 0, F_DATE = 1, F_DATETIME2 = 2, F_TIMESTAMP2 = 3, F_DECIMAL = 4, F_BASE64 = 5 };

typedef struct {
    PyObject *name;  /* borrowed from the spec tuple, which the layout keeps alive */
    PyObject *conv;  /* or NULL */
    const char *codec;
    int mode;
    int width;   /* fixed width, or length-prefix bytes */
    int nullable;
    int fast;
    int millis;  /* DATETIME2: milliseconds instead of microseconds */
    int fsp;
    int frac_bytes;
    int64_t unit;
    int utf8;
    int ngroups;
    int gbytes[16];
    int64_t gbase[16];
} Col;

typedef struct {
    PyObject *spec;
    Py_ssize_t count;
    Py_ssize_t null_bytes;
    Col cols[];
} Layout;

static const char LAYOUT_NAME[] = "cdc.mysql.layout";

#if PY_VERSION_HEX < 0x030D0000
#define NEW_DICT(n) _PyDict_NewPresized(n)
#else
#define NEW_DICT(n) PyDict_New()
#endif

static void layout_free(PyObject *capsule) {
    Layout *l = (Layout *)PyCapsule_GetPointer(capsule, LAYOUT_NAME);
    if (l != NULL) {
        Py_XDECREF(l->spec);
        PyMem_Free(l);
    }
}

/* make_layout(spec) -> capsule. spec: tuple of
 * (name, mode, width, nullable, conv, codec, fast, fsp, millis, groups) per present column,
 * groups a tuple of (bytes, base) for DECIMAL. */
static PyObject *make_layout(PyObject *self, PyObject *args) {
    PyObject *spec;
    if (!PyArg_ParseTuple(args, "O!", &PyTuple_Type, &spec)) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(spec);
    Layout *l = (Layout *)PyMem_Calloc(1, sizeof(Layout) + (size_t)n * sizeof(Col));
    if (l == NULL) return PyErr_NoMemory();
    l->count = n;
    l->null_bytes = (n + 7) / 8;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyTuple_GET_ITEM(spec, i);
        Col *c = &l->cols[i];
        PyObject *name, *conv, *codec, *groups;
        int nullable, millis;
        if (!PyTuple_Check(t) ||
            !PyArg_ParseTuple(t, "UiipOOiipO", &name, &c->mode, &c->width, &nullable, &conv, &codec, &c->fast,
                              &c->fsp, &millis, &groups)) {
            PyMem_Free(l);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "bad column spec");
            return NULL;
        }
        c->name = name;
        c->nullable = nullable;
        c->millis = millis;
        c->conv = conv == Py_None ? NULL : conv;
        c->codec = NULL;
        if (codec != Py_None) {
            c->codec = PyUnicode_AsUTF8(codec);
            if (c->codec == NULL) { PyMem_Free(l); return NULL; }
            c->utf8 = strcmp(c->codec, "utf-8") == 0 || strcmp(c->codec, "utf8") == 0;
        }
        if ((c->fast == F_DATETIME2 || c->fast == F_TIMESTAMP2) && (c->fsp < 0 || c->fsp > 6))
            c->fast = F_NONE; /* not a precision MySQL has: the Python converter decides */
        if (c->fsp < 0 || c->fsp > 6) c->fsp = 0;
        c->frac_bytes = (c->fsp + 1) / 2;
        static const int64_t units[4] = {1, 10000, 100, 1};
        c->unit = units[c->frac_bytes & 3];
        if (c->mode < M_SINT || c->mode > M_VARSTR || c->width < 0 || c->width > 255 ||
            ((c->mode == M_VARBYTES || c->mode == M_VARSTR) && (c->width < 1 || c->width > 4)) ||
            ((c->mode == M_SINT || c->mode == M_UINT) && !(c->width == 1 || c->width == 2 || c->width == 3 ||
                                                            c->width == 4 || c->width == 8)) ||
            (c->mode == M_VARSTR && c->codec == NULL) || (c->fast != F_NONE && c->conv == NULL)) {
            PyMem_Free(l);
            PyErr_SetString(PyExc_ValueError, "inconsistent column spec");
            return NULL;
        }
        if (c->fast == F_DECIMAL) {
            if (!PyTuple_Check(groups) || PyTuple_GET_SIZE(groups) > 16) {
                PyMem_Free(l);
                PyErr_SetString(PyExc_ValueError, "bad DECIMAL groups");
                return NULL;
            }
            c->ngroups = (int)PyTuple_GET_SIZE(groups);
            int total = 0;
            for (int g = 0; g < c->ngroups; g++) {
                long long base;
                if (!PyArg_ParseTuple(PyTuple_GET_ITEM(groups, g), "iL", &c->gbytes[g], &base)) {
                    PyMem_Free(l);
                    return NULL;
                }
                c->gbase[g] = base;
                total += c->gbytes[g];
            }
            if (total != c->width) {
                PyMem_Free(l);
                PyErr_SetString(PyExc_ValueError, "DECIMAL groups do not cover the width");
                return NULL;
            }
        }
    }
    Py_INCREF(spec);
    l->spec = spec;
    PyObject *capsule = PyCapsule_New(l, LAYOUT_NAME, layout_free);
    if (capsule == NULL) {
        Py_DECREF(spec);
        PyMem_Free(l);
    }
    return capsule;
}

/* ---- conversions ---------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    /* days from 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm) */
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int64_t y, int64_t m) {
    static const int dim[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return dim[m];
}

static int valid_date(int64_t y, int64_t m, int64_t d) {
    return y >= 1 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= days_in_month(y, m);
}

static uint64_t be(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

static int64_t floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static PyObject *base64_str(const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t out_len = (n + 2) / 3 * 4;
    PyObject *s = PyUnicode_New(out_len, 127);
    if (s == NULL) return NULL;
    unsigned char *o = (unsigned char *)PyUnicode_DATA(s);
    Py_ssize_t i = 0, j = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        o[j++] = B64[v >> 18 & 63];
        o[j++] = B64[v >> 12 & 63];
        o[j++] = B64[v >> 6 & 63];
        o[j++] = B64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        o[j++] = B64[v >> 18 & 63];
        o[j++] = B64[v >> 12 & 63];
        o[j++] = i + 1 < n ? B64[v >> 6 & 63] : '=';
        o[j++] = '=';
    }
    return s;
}

/* NULL without an exception set: "let the Python converter decide" */
#define DEFER NULL

static PyObject *fast_date(const unsigned char *p, int sign) {
    uint32_t packed = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
    (void)sign;
    int64_t day = packed & 31, month = packed >> 5 & 15, year = packed >> 9;
    if (!valid_date(year, month, day)) return DEFER;
    return PyLong_FromLongLong(days_from_civil(year, month, day));
}

static PyObject *fast_datetime2(const Col *c, const unsigned char *p) {
    int64_t packed = (int64_t)be(p, 5) - (int64_t)0x8000000000LL;
    if (packed < 0) return DEFER;
    int64_t frac = (int64_t)be(p + 5, c->frac_bytes);
    int64_t second = packed & 63, minute = packed >> 6 & 63, hour = packed >> 12 & 31;
    int64_t ymd = packed >> 17;
    int64_t day = ymd & 31, ym = ymd >> 5;
    int64_t year = ym / 13, month = ym % 13;
    if (!valid_date(year, month, day) || hour > 23 || minute > 59 || second > 59) return DEFER;
    int64_t micros = (days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second) * 1000000 +
                     frac * c->unit;
    return PyLong_FromLongLong(c->millis ? floordiv(micros, 1000) : micros);
}

static PyObject *fast_timestamp2(const Col *c, const unsigned char *p) {
    int64_t seconds = (int64_t)be(p, 4);
    int64_t frac = (int64_t)be(p + 4, c->frac_bytes);
    if (seconds == 0 && frac == 0) return DEFER;
    int64_t micros = frac * c->unit;
    if (micros > 999999) return DEFER;
    int y, mo, d;
    civil_from_days(seconds / 86400, &y, &mo, &d);
    int64_t rem = seconds % 86400;
    char buf[48];
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", y, mo, d, (int)(rem / 3600),
                     (int)(rem / 60 % 60), (int)(rem % 60));
    if (c->fsp > 0) {
        char f[24];
        snprintf(f, sizeof f, "%06lld", (long long)micros);
        buf[n++] = '.';
        memcpy(buf + n, f, (size_t)c->fsp);
        n += c->fsp;
    }
    buf[n++] = 'Z';
    return PyUnicode_FromStringAndSize(buf, n);
}

static PyObject *fast_decimal(const Col *c, const unsigned char *p) {
    unsigned char b[64];
    int w = c->width;
    if (w > (int)sizeof b) return DEFER;
    int negative = !(p[0] & 0x80);
    for (int i = 0; i < w; i++) b[i] = negative ? (unsigned char)~p[i] : p[i];
    b[0] &= 0x7F;
    __int128 number = 0;
    int digits = 0;
    const unsigned char *q = b;
    for (int g = 0; g < c->ngroups; g++) {
        int64_t v = (int64_t)be(q, c->gbytes[g]);
        q += c->gbytes[g];
        if (v >= c->gbase[g]) return DEFER;
        int64_t base = c->gbase[g];
        while (base > 1) { base /= 10; digits++; }
        if (digits > 38) return DEFER;
        number = number * c->gbase[g] + v;
    }
    if (negative) number = -number;
    unsigned __int128 u = (unsigned __int128)(number >= 0 ? number : ~number);
    int bits = 0;
    while (u) { bits++; u >>= 1; }
    int n = (bits >> 3) + 1;
    unsigned char out[17];
    unsigned __int128 x = (unsigned __int128)number;
    for (int i = n - 1; i >= 0; i--) { out[i] = (unsigned char)(x & 0xFF); x >>= 8; }
    return base64_str(out, n);
}

/* ---- the reader ----------------------------------------------------------------------- */

static PyObject *call_conv(const Col *c, PyObject *raw) {
    if (raw == NULL || c->conv == NULL) return raw;
    PyObject *v = PyObject_CallOneArg(c->conv, raw);
    Py_DECREF(raw);
    return v;
}

/* images(layout, buf, pos, end, out) -> position after the last image; appends a dict per image */
static PyObject *images(PyObject *self, PyObject *args) {
    PyObject *capsule, *out;
    Py_buffer view;
    Py_ssize_t pos, end;
    if (!PyArg_ParseTuple(args, "Oy*nnO!", &capsule, &view, &pos, &end, &PyList_Type, &out)) return NULL;
    Layout *l = (Layout *)PyCapsule_GetPointer(capsule, LAYOUT_NAME);
    if (l == NULL) { PyBuffer_Release(&view); return NULL; }
    const unsigned char *buf = (const unsigned char *)view.buf;
    if (end > view.len || pos < 0 || pos > end) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "positions outside the buffer");
        return NULL;
    }
#define NEED(k) do { if ((k) < 0 || pos + (k) > end) goto truncated; } while (0)
    while (pos < end) {
        NEED(l->null_bytes);
        const unsigned char *nulls = buf + pos;
        pos += l->null_bytes;
        PyObject *row = NEW_DICT(l->count);
        if (row == NULL) goto fail;
        for (Py_ssize_t k = 0; k < l->count; k++) {
            const Col *c = &l->cols[k];
            PyObject *v;
            if (nulls[k >> 3] >> (k & 7) & 1) {
                if (!c->nullable) { Py_DECREF(row); goto not_null; }
                v = Py_NewRef(Py_None);
            } else {
                const unsigned char *p;
                switch (c->mode) {
                case M_SINT:
                case M_UINT: {
                    NEED(c->width);
                    p = buf + pos;
                    pos += c->width;
                    uint64_t u = 0;
                    for (int i = c->width - 1; i >= 0; i--) u = u << 8 | p[i];
                    if (c->fast == F_DATE) {
                        v = fast_date(p, 0);
                        if (v == DEFER && !PyErr_Occurred()) v = call_conv(c, PyLong_FromUnsignedLongLong(u));
                        break;
                    }
                    PyObject *raw;
                    if (c->mode == M_UINT) {
                        raw = PyLong_FromUnsignedLongLong(u);
                    } else {
                        int shift = 64 - 8 * c->width;
                        int64_t s = (int64_t)(u << shift) >> shift;
                        raw = PyLong_FromLongLong(s);
                    }
                    v = call_conv(c, raw);
                    break;
                }
                case M_F32: {
                    NEED(4);
                    float f;
                    memcpy(&f, buf + pos, 4);
                    pos += 4;
                    v = call_conv(c, PyFloat_FromDouble((double)f));
                    break;
                }
                case M_F64: {
                    NEED(8);
                    double d;
                    memcpy(&d, buf + pos, 8);
                    pos += 8;
                    v = call_conv(c, PyFloat_FromDouble(d));
                    break;
                }
                case M_FIXED: {
                    NEED(c->width);
                    p = buf + pos;
                    pos += c->width;
                    v = DEFER;
                    if (c->fast == F_DATETIME2) v = fast_datetime2(c, p);
                    else if (c->fast == F_TIMESTAMP2) v = fast_timestamp2(c, p);
                    else if (c->fast == F_DECIMAL) v = fast_decimal(c, p);
                    if (v == DEFER && !PyErr_Occurred())
                        v = call_conv(c, PyBytes_FromStringAndSize((const char *)p, c->width));
                    break;
                }
                default: { /* M_VARBYTES, M_VARSTR */
                    NEED(c->width);
                    p = buf + pos;
                    Py_ssize_t n = 0;
                    for (int i = c->width - 1; i >= 0; i--) n = n << 8 | p[i];
                    pos += c->width;
                    NEED(n);
                    p = buf + pos;
                    pos += n;
                    if (c->mode == M_VARSTR) {
                        v = c->utf8 ? PyUnicode_DecodeUTF8((const char *)p, n, "strict")
                                    : PyUnicode_Decode((const char *)p, n, c->codec, "strict");
                        v = call_conv(c, v);
                    } else if (c->fast == F_BASE64) {
                        v = base64_str(p, n);
                    } else {
                        v = call_conv(c, PyBytes_FromStringAndSize((const char *)p, n));
                    }
                }
                }
                if (v == NULL) { Py_DECREF(row); goto fail; }
            }
            int rc = PyDict_SetItem(row, c->name, v);
            Py_DECREF(v);
            if (rc < 0) { Py_DECREF(row); goto fail; }
        }
        int rc = PyList_Append(out, row);
        Py_DECREF(row);
        if (rc < 0) goto fail;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(pos);
truncated:
    PyErr_SetString(PyExc_ValueError, "row images overrun the event");
    goto fail;
not_null:
    PyErr_SetString(PyExc_ValueError, "NULL in a NOT NULL column");
fail:
    PyBuffer_Release(&view);
    return NULL;
#undef NEED
}

static PyMethodDef methods[] = {
    {"make_layout", make_layout, METH_VARARGS, "Compile a column spec (see decoder._fast_spec)."},
    {"images", images, METH_VARARGS, "Read every row image from pos to end into out; the position reached."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", "Compiled MySQL row-image reader.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
