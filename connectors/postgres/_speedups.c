/*
 * Optional compiled helpers for connectors/postgres (pgoutput.py and types.py).
 *
 * tuple_values: pgoutput TupleData, as pgoutput._tuple reads it. Anything it does not read
 * exactly (an unknown column kind, a length past the end, text that is not UTF-8) raises
 * ValueError; the caller then decodes the message with the Python reader, which is the
 * reference and names the error.
 *
 * precise_b64: numeric text with exactly `scale` fraction digits (no dot for scale 0), at most
 * 38 digits, as Debezium's precise decimal (base64 of Java's BigInteger.toByteArray()); None for
 * anything else (the Python converter decides). tests/unit/test_pg_speedups.py compares both.
 *
 * timestamp_micros: the common form of timestamp text as epoch microseconds (see below).
 *
 * copy_binary_rows: the rows of a binary COPY stream (the pg-binary backup chunks; see below).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *tuple_values(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    Py_ssize_t pos;
    PyObject *unchanged;
    if (!PyArg_ParseTuple(args, "y*nO", &view, &pos, &unchanged)) return NULL;
    const unsigned char *d = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;
    PyObject *values = NULL;
    if (pos < 0 || pos + 2 > n) goto bad;
    Py_ssize_t count = (Py_ssize_t)d[pos] << 8 | d[pos + 1];
    Py_ssize_t i = pos + 2;
    values = PyTuple_New(count);
    if (values == NULL) goto fail;
    for (Py_ssize_t k = 0; k < count; k++) {
        if (i >= n) goto bad;
        unsigned char kind = d[i];
        PyObject *v;
        if (kind == 't' || kind == 'b') {
            if (i + 5 > n) goto bad;
            uint32_t len = (uint32_t)d[i + 1] << 24 | (uint32_t)d[i + 2] << 16 | (uint32_t)d[i + 3] << 8 | d[i + 4];
            Py_ssize_t start = i + 5;
            if ((Py_ssize_t)len > n - start) goto bad;
            i = start + (Py_ssize_t)len;
            v = kind == 't' ? PyUnicode_DecodeUTF8((const char *)d + start, (Py_ssize_t)len, "strict")
                            : PyBytes_FromStringAndSize((const char *)d + start, (Py_ssize_t)len);
            if (v == NULL) {
                if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    PyErr_Clear();
                    goto bad;
                }
                goto fail;
            }
        } else if (kind == 'n') {
            v = Py_NewRef(Py_None);
            i += 1;
        } else if (kind == 'u') {
            v = Py_NewRef(unchanged);
            i += 1;
        } else {
            goto bad;
        }
        PyTuple_SET_ITEM(values, k, v);
    }
    PyBuffer_Release(&view);
    PyObject *out = Py_BuildValue("(Nn)", values, i);
    return out;
bad:
    PyErr_SetString(PyExc_ValueError, "TupleData the compiled reader does not read");
fail:
    Py_XDECREF(values);
    PyBuffer_Release(&view);
    return NULL;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static PyObject *precise_b64(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *text;
    int scale;
    if (!PyArg_ParseTuple(args, "Ui", &text, &scale)) return NULL;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    if (s == NULL) return NULL;
    Py_ssize_t i = 0;
    int negative = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) {
        negative = s[i] == '-';
        i++;
    }
    __int128 v = 0;
    int digits = 0, whole = 0, frac = -1;
    for (; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (++digits > 38) Py_RETURN_NONE;
            v = v * 10 + (c - '0');
            if (frac >= 0) frac++; else whole++;
        } else if (c == '.' && frac < 0) {
            frac = 0;
        } else {
            Py_RETURN_NONE;
        }
    }
    if (whole == 0) Py_RETURN_NONE;
    if (frac < 0 ? scale != 0 : frac != scale) Py_RETURN_NONE;
    if (negative) v = -v;
    unsigned __int128 u = (unsigned __int128)(v >= 0 ? v : ~v);
    int bits = 0;
    while (u) { bits++; u >>= 1; }
    int len = (bits >> 3) + 1;
    unsigned char raw[17];
    unsigned __int128 x = (unsigned __int128)v;
    for (int k = len - 1; k >= 0; k--) { raw[k] = (unsigned char)(x & 0xFF); x >>= 8; }
    char out[32];
    int j = 0, k = 0;
    for (; k + 2 < len; k += 3) {
        uint32_t w = (uint32_t)raw[k] << 16 | (uint32_t)raw[k + 1] << 8 | raw[k + 2];
        out[j++] = B64[w >> 18 & 63]; out[j++] = B64[w >> 12 & 63]; out[j++] = B64[w >> 6 & 63]; out[j++] = B64[w & 63];
    }
    if (k < len) {
        uint32_t w = (uint32_t)raw[k] << 16 | (k + 1 < len ? (uint32_t)raw[k + 1] << 8 : 0);
        out[j++] = B64[w >> 18 & 63];
        out[j++] = B64[w >> 12 & 63];
        out[j++] = k + 1 < len ? B64[w >> 6 & 63] : '=';
        out[j++] = '=';
    }
    return PyUnicode_FromStringAndSize(out, j);
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/*
 * timestamp_micros: "YYYY-MM-DD HH:MM:SS[.f{1,6}]" (years 0001-9999, as PostgreSQL's ISO output
 * writes a timestamp without time zone) as microseconds since 1970-01-01 00:00:00; None for any
 * other text (BC, infinity, a year past 9999, an out-of-range field), which the Python converter
 * then reads.
 */
static PyObject *timestamp_micros(PyObject *self, PyObject *arg) {
    (void)self;
    Py_ssize_t n;
    const char *t = PyUnicode_Check(arg) ? PyUnicode_AsUTF8AndSize(arg, &n) : NULL;
    if (t == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    int y, mo, d, h, mi, sec, frac = 0;
    if (n < 19 || n > 26 || n == 20 || t[4] != '-' || t[7] != '-' || t[10] != ' ' || t[13] != ':' || t[16] != ':' ||
        !digits(t, 4, &y) || !digits(t + 5, 2, &mo) || !digits(t + 8, 2, &d) || !digits(t + 11, 2, &h) ||
        !digits(t + 14, 2, &mi) || !digits(t + 17, 2, &sec))
        Py_RETURN_NONE;
    if (n > 19) {
        if (t[19] != '.' || !digits(t + 20, (int)(n - 20), &frac)) Py_RETURN_NONE;
        for (Py_ssize_t k = n - 20; k < 6; k++) frac *= 10;
    }
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) || h > 23 || mi > 59 ||
        sec > 59)
        Py_RETURN_NONE;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t us = ((days * 24 + h) * 60 + mi) * 60 + sec;
    return PyLong_FromLongLong(us * 1000000 + frac);
}

/*
 * copy_binary_rows: every row of a whole binary COPY stream (header, `width`-field tuples, end
 * marker) as a tuple of bytes/None, as connectors/postgres/copybin._split_python reads it; ValueError
 * for anything else.
 */
static int32_t be32(const unsigned char *p) {
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

static PyObject *copy_binary_rows(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "y*n", &view, &width)) return NULL;
    const unsigned char *d = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;
    PyObject *rows = PyList_New(0);
    PyObject *row = NULL;
    const char *why = NULL;
    if (rows == NULL) goto fail;
    if (n < 19 || memcmp(d, "PGCOPY\n\377\r\n\0", 11) != 0) { why = "not a binary COPY stream (no signature)"; goto bad; }
    int32_t ext = be32(d + 15);
    if (ext < 0 || ext > n - 19) { why = "a binary COPY header past the end of the stream"; goto bad; }
    Py_ssize_t pos = 19 + ext;
    for (;;) {
        if (pos + 2 > n) { why = "a binary COPY stream without its end marker"; goto bad; }
        int16_t count = (int16_t)((uint16_t)d[pos] << 8 | d[pos + 1]);
        pos += 2;
        if (count == -1) break;
        if (count != width) { why = "a row of another number of fields"; goto bad; }
        row = PyTuple_New(count);
        if (row == NULL) goto fail;
        for (Py_ssize_t k = 0; k < count; k++) {
            if (pos + 4 > n) { why = "a field past the end of the stream"; goto bad; }
            int32_t size = be32(d + pos);
            pos += 4;
            PyObject *v;
            if (size == -1) {
                v = Py_NewRef(Py_None);
            } else {
                if (size < 0 || size > n - pos) { why = "a field past the end of the stream"; goto bad; }
                v = PyBytes_FromStringAndSize((const char *)d + pos, size);
                if (v == NULL) goto fail;
                pos += size;
            }
            PyTuple_SET_ITEM(row, k, v);
        }
        if (PyList_Append(rows, row) < 0) goto fail;
        Py_CLEAR(row);
    }
    if (pos != n) { why = "bytes after the end marker of a binary COPY stream"; goto bad; }
    PyBuffer_Release(&view);
    return rows;
bad:
    PyErr_SetString(PyExc_ValueError, why);
fail:
    Py_XDECREF(row);
    Py_XDECREF(rows);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"copy_binary_rows", copy_binary_rows, METH_VARARGS, "A whole binary COPY stream's rows as tuples."},
    {"timestamp_micros", timestamp_micros, METH_O, "ISO timestamp text to epoch microseconds, or None."},
    {"tuple_values", tuple_values, METH_VARARGS, "pgoutput TupleData at pos: (values, offset after it)."},
    {"precise_b64", precise_b64, METH_VARARGS, "Numeric text to Debezium's precise decimal, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", "Compiled pgoutput helpers.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
