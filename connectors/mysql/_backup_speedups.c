/*
 * Optional compiled reader for connectors/mysql/backup.py: text-protocol result rows to LOAD DATA lines.
 *
 * A backup's plain SELECT returns every row as one packet of length-encoded strings (0xFB for
 * NULL), each value the text the server writes for its column. rows() turns the complete row
 * packets in a buffer into the lines of the mysql-tsv encoding, exactly as backup._row_line (the
 * Python reference) does: values separated by tabs, \N for NULL, a backslash before every backslash
 * and tab, \n for a line feed, binary columns (hexmask) in upper-case hex, a line feed after each
 * row. It stops at the end of the rows (the EOF packet, consumed), at an error packet or a packet
 * of 16 MiB - 1 or more (left for the caller), after max_rows rows, or where the buffer ends in
 * the middle of a packet. A row that does not have the expected shape raises ValueError.
 *
 * hexmask has one byte per column: bit 1 writes the column in hex; bit 2 marks a DATE, DATETIME or
 * TIMESTAMP column, whose zero or impossible values (year 0, month or day 0, a day past the end of
 * its month: what PyMySQL returns as text) are counted in "suspect", the rows holding one.
 * tests/unit/test_backup_native.py compares it with the reference.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

enum { NEED_MORE = 0, END_OF_ROWS = 1, ERROR_PACKET = 2, LONG_PACKET = 3, MAX_ROWS = 4 };

static const char HEX[] = "0123456789ABCDEF";

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Whether the text of a date or date-time value is not a real date: "YYYY-MM-DD..." with year 0, month
   or day 0, or a day past the end of its month (anything else of another shape counts too). */
static int bad_date(const unsigned char *v, Py_ssize_t len) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    static const int at[] = {0, 1, 2, 3, 5, 6, 8, 9};
    if (len < 10 || v[4] != '-' || v[7] != '-')
        return 1;
    for (int k = 0; k < 8; k++)
        if (!is_digit(v[at[k]]))
            return 1;
    int y = (v[0] - '0') * 1000 + (v[1] - '0') * 100 + (v[2] - '0') * 10 + (v[3] - '0');
    int m = (v[5] - '0') * 10 + (v[6] - '0');
    int d = (v[8] - '0') * 10 + (v[9] - '0');
    if (y == 0 || m < 1 || m > 12 || d < 1)
        return 1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d > days[m - 1] + (m == 2 && leap);
}

/* rows(buffer, start, columns, hexmask, max_rows) -> (end, lines, count, status, seq, suspect) */
static PyObject *rows(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer in, mask;
    Py_ssize_t start, max_rows;
    int columns;
    if (!PyArg_ParseTuple(args, "y*niy*n", &in, &start, &columns, &mask, &max_rows))
        return NULL;
    PyObject *result = NULL;
    if (columns < 1 || mask.len < columns || start < 0 || start > in.len) {
        PyErr_SetString(PyExc_ValueError, "bad arguments");
        goto done;
    }
    const unsigned char *b = (const unsigned char *)in.buf;
    const unsigned char *hexmask = (const unsigned char *)mask.buf;
    Py_ssize_t n = in.len, i = start;
    /* per value at most 3 bytes out per byte in (a NULL: 1 byte in, tab and \N out), per row fewer
       (a 4-byte header in, one line feed out) */
    Py_ssize_t cap = 3 * (n - start) + 8;
    PyObject *out = PyBytes_FromStringAndSize(NULL, cap);
    if (out == NULL)
        goto done;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    unsigned char *op = o;
    Py_ssize_t count = 0, suspect = 0;
    int status = NEED_MORE, seq = -1;
    for (;;) {
        if (count >= max_rows) {
            status = MAX_ROWS;
            break;
        }
        if (n - i < 4)
            break;
        Py_ssize_t size = (Py_ssize_t)b[i] | ((Py_ssize_t)b[i + 1] << 8) | ((Py_ssize_t)b[i + 2] << 16);
        if (size == 0xFFFFFF) {
            status = LONG_PACKET;
            break;
        }
        if (n - i - 4 < size)
            break;
        const unsigned char *p = b + i + 4, *end = p + size;
        if (size > 0 && p[0] == 0xFE && size < 9) {
            seq = b[i + 3];
            i += 4 + size;
            status = END_OF_ROWS;
            break;
        }
        if (size > 0 && p[0] == 0xFF) {
            status = ERROR_PACKET;
            break;
        }
        int bad = 0;
        for (int c = 0; c < columns; c++) {
            if (c)
                *op++ = '\t';
            if (p >= end)
                goto malformed;
            unsigned int f = *p++;
            uint64_t len;
            if (f < 0xFB) {
                len = f;
            } else if (f == 0xFB) {
                *op++ = '\\';
                *op++ = 'N';
                continue;
            } else if (f == 0xFC) {
                if (end - p < 2)
                    goto malformed;
                len = (uint64_t)p[0] | ((uint64_t)p[1] << 8);
                p += 2;
            } else if (f == 0xFD) {
                if (end - p < 3)
                    goto malformed;
                len = (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16);
                p += 3;
            } else if (f == 0xFE) {
                if (end - p < 8)
                    goto malformed;
                len = 0;
                for (int k = 7; k >= 0; k--)
                    len = (len << 8) | p[k];
                p += 8;
            } else {
                goto malformed;
            }
            if (len > (uint64_t)(end - p))
                goto malformed;
            const unsigned char *v = p, *vend = p + len;
            if ((hexmask[c] & 2) && !bad)
                bad = bad_date(v, (Py_ssize_t)len);
            if (hexmask[c] & 1) {
                for (; v < vend; v++) {
                    *op++ = HEX[*v >> 4];
                    *op++ = HEX[*v & 15];
                }
            } else {
                for (; v < vend; v++) {
                    unsigned char ch = *v;
                    if (ch == '\\' || ch == '\t') {
                        *op++ = '\\';
                        *op++ = ch;
                    } else if (ch == '\n') {
                        *op++ = '\\';
                        *op++ = 'n';
                    } else {
                        *op++ = ch;
                    }
                }
            }
            p = vend;
        }
        if (p != end)
            goto malformed;
        *op++ = '\n';
        seq = b[i + 3];
        i += 4 + size;
        count++;
        suspect += bad;
    }
    if (_PyBytes_Resize(&out, op - o) < 0)
        goto done;
    result = Py_BuildValue("(nNniin)", i, out, count, status, seq, suspect);
    goto done;
malformed:
    Py_DECREF(out);
    PyErr_SetString(PyExc_ValueError, "a result row does not have the expected shape");
done:
    PyBuffer_Release(&in);
    PyBuffer_Release(&mask);
    return result;
}

static PyMethodDef methods[] = {
    {"rows", rows, METH_VARARGS, "Complete text-protocol row packets of a buffer as LOAD DATA lines."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_backup_speedups", NULL, -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__backup_speedups(void) { return PyModule_Create(&module); }
