/* AVL payloads (Codec 8, 8 Extended, 16) decoded in C: the packet that
 * teltotwist.codec.avl.decode_avl_payload(buffer, start, end) returns, in one
 * call.
 *
 * Built only with TELTOTWIST_COMPILE=1 (setup.py). It decodes what the Python
 * decoder accepts in the standard layout, and nothing else: for any payload
 * that decoder rejects, and for Codec 8's non-standard 16-byte IO group, it
 * returns None, and the Python decoder then raises the error (with its
 * message and offset) or tries the 16-byte group
 * (avl.decode_standard_avl_payload, frame.decode_checked_frame).
 *
 * Its bytes come from the network: every read is checked against the end of
 * the payload first, and it allocates only for bytes it has found there.
 * tests/test_codec_fastavl.py checks that both decoders give the same
 * packets, field for field and type for type, and reject the same payloads.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* AvlRecord's fields, in its tuple. */
enum {
    F_TIMESTAMP, F_PRIORITY, F_LONGITUDE, F_LATITUDE, F_ALTITUDE, F_ANGLE,
    F_SATELLITES, F_SPEED, F_EVENT_ID, F_IO, F_IO_LAYOUT, F_GENERATION_TYPE,
    F_WIRE, RECORD_FIELDS
};

/* AvlPacket's fields, in its tuple. */
enum { P_CODEC, P_RECORDS, P_IO16, PACKET_FIELDS };

/* The counts of an io_layout: the four fixed-size groups, the 16-byte group
 * (never here: 0) and Codec 8E's variable-length (NX) group. */
enum { FIXED_GROUPS = 4, LAYOUT_COUNTS = 6, VARIABLE_GROUP = LAYOUT_COUNTS - 1 };

#define MAX_TIMESTAMP_MS 253402300799999ULL /* 9999-12-31T23:59:59.999Z */
#define GPS_SIZE 24 /* timestamp .. speed */
#define NX_HEAD_SIZE 4 /* an NX element's u16 id and u16 length */

/* What a step returns: done, or left to the Python decoder (CANNOT), or a
 * Python error (FAILED, an exception is set). */
#define DONE 0
#define CANNOT 1
#define FAILED -1

#define STEP(call)                                                           \
    do {                                                                     \
        int outcome_ = (call);                                               \
        if (outcome_ != DONE) {                                              \
            return outcome_;                                                 \
        }                                                                    \
    } while (0)

/* Where Codec 8, 8E and 16 differ (avl._LAYOUTS). */
typedef struct {
    unsigned char codec_id;
    Py_ssize_t id_width;      /* the event id and IO ids: 1 or 2 bytes */
    Py_ssize_t count_width;   /* N total and the group counts: 1 or 2 bytes */
    int has_generation_type;  /* Codec 16: a byte between event id and N total */
    int has_variable_group;   /* Codec 8E: the NX group after the 8-byte one */
} Layout;

/* In the order of the codecs tuple the caller passes. */
static const Layout LAYOUTS[] = {
    {0x08, 1, 1, 0, 0},
    {0x8E, 2, 2, 0, 1},
    {0x10, 2, 1, 1, 0},
};
#define CODECS ((Py_ssize_t)(sizeof LAYOUTS / sizeof LAYOUTS[0]))

static const Py_ssize_t VALUE_WIDTHS[FIXED_GROUPS] = {1, 2, 4, 8};

/* The payload being read. data[at] is the next byte; data[end] is the
 * second record count, which no record may reach. at <= end throughout. */
typedef struct {
    const unsigned char *data;
    Py_ssize_t at;
    Py_ssize_t end;
} Reader;

/* Whether *size* more bytes are there before the end. Sizes are at most
 * 65535 elements of 2 + 8 bytes, and at <= end, so nothing overflows. */
static inline int
has(const Reader *reader, Py_ssize_t size)
{
    return size <= reader->end - reader->at;
}

/* The next *width* bytes (1 to 8, which has() found there) as a big-endian
 * unsigned integer. */
static inline uint64_t
take(Reader *reader, Py_ssize_t width)
{
    const unsigned char *bytes = reader->data + reader->at;
    uint64_t value = 0;
    for (Py_ssize_t index = 0; index < width; index++) {
        value = value << 8 | bytes[index];
    }
    reader->at += width;
    return value;
}

/* *value*, *bits* wide, read as two's complement: arithmetic, since C leaves
 * converting an out-of-range unsigned value to a signed type to the
 * compiler. */
static inline long
twos_complement(uint64_t value, int bits)
{
    int64_t sign = (int64_t)1 << (bits - 1);
    return (long)((int64_t)(value ^ (uint64_t)sign) - sign);
}

/* Degrees from a count of 1e-7 degrees. The Python decoder divides two ints,
 * which below 2**53 Python does as here: both are exact doubles, divided
 * once. */
static PyObject *
degrees(long raw)
{
    return PyFloat_FromDouble((double)raw / 10000000.0);
}

/* Release *size* references, any of them NULL, and forget them. */
static void
release(PyObject **items, Py_ssize_t size)
{
    for (Py_ssize_t index = 0; index < size; index++) {
        Py_CLEAR(items[index]);
    }
}

/* An instance of *type*, a subclass of tuple, holding *items*: what
 * tuple.__new__(type, items) makes. It takes the *size* references, which
 * it releases when it fails. */
static PyObject *
new_tuple(PyTypeObject *type, PyObject **items, Py_ssize_t size)
{
#if PY_VERSION_HEX < 0x030E0000
    /* Up to 3.13, tuple.__new__ makes an instance of a subclass just so:
     * allocate it with its type's tp_alloc, then fill it. */
    PyObject *filled = type->tp_alloc(type, size);
#else
    /* From 3.14 a tuple caches its hash, and tuple.__new__ also resets that
     * cache in what tp_alloc returned: fill a plain tuple, and let
     * tuple.__new__ make the instance of it. */
    PyObject *filled = PyTuple_New(size);
#endif
    if (filled == NULL) {
        release(items, size);
        return NULL;
    }
    for (Py_ssize_t index = 0; index < size; index++) {
        PyTuple_SET_ITEM(filled, index, items[index]);
        items[index] = NULL;
    }
#if PY_VERSION_HEX < 0x030E0000
    return filled;
#else
    PyObject *arguments = PyTuple_Pack(1, filled);
    Py_DECREF(filled);
    if (arguments == NULL) {
        return NULL;
    }
    PyObject *made = PyTuple_Type.tp_new(type, arguments, NULL);
    Py_DECREF(arguments);
    return made;
#endif
}

/* io[key] = value. It takes both references; *value* may be NULL (its
 * maker failed). CANNOT when *key* was there already: an IO id may appear
 * once in a record. */
static int
put_element(PyObject *io, PyObject *key, PyObject *value)
{
    if (value == NULL) {
        Py_DECREF(key);
        return FAILED;
    }
    Py_ssize_t before = PyDict_GET_SIZE(io);
    int failed = PyDict_SetItem(io, key, value) < 0;
    Py_DECREF(key);
    Py_DECREF(value);
    if (failed) {
        return FAILED;
    }
    return PyDict_GET_SIZE(io) == before + 1 ? DONE : CANNOT;
}

/* The record's head, timestamp to N total: its fields into *fields* (new
 * references) and N total into *total*. */
static int
decode_head(Reader *reader, const Layout *layout, PyObject **fields,
            Py_ssize_t *total)
{
    Py_ssize_t size = GPS_SIZE + layout->id_width + layout->has_generation_type
                      + layout->count_width;
    if (!has(reader, size)) {
        return CANNOT;
    }
    /* Read in wire order, one statement each: C does not order the
     * evaluation of a call's arguments. */
    uint64_t timestamp = take(reader, 8);
    if (timestamp > MAX_TIMESTAMP_MS) {
        return CANNOT;
    }
    long priority = (long)take(reader, 1);
    long longitude = twos_complement(take(reader, 4), 32);
    long latitude = twos_complement(take(reader, 4), 32);
    long altitude = twos_complement(take(reader, 2), 16);
    long angle = (long)take(reader, 2);
    long satellites = (long)take(reader, 1);
    long speed = (long)take(reader, 2);
    long event_id = (long)take(reader, layout->id_width);
    long generation_type = layout->has_generation_type ? (long)take(reader, 1) : -1;
    *total = (Py_ssize_t)take(reader, layout->count_width);

#define MAKE(field, maker)                                                   \
    do {                                                                     \
        if ((fields[field] = (maker)) == NULL) {                             \
            return FAILED;                                                   \
        }                                                                    \
    } while (0)
    MAKE(F_TIMESTAMP, PyLong_FromUnsignedLongLong(timestamp));
    MAKE(F_PRIORITY, PyLong_FromLong(priority));
    MAKE(F_LONGITUDE, degrees(longitude));
    MAKE(F_LATITUDE, degrees(latitude));
    MAKE(F_ALTITUDE, PyLong_FromLong(altitude));
    MAKE(F_ANGLE, PyLong_FromLong(angle));
    MAKE(F_SATELLITES, PyLong_FromLong(satellites));
    MAKE(F_SPEED, PyLong_FromLong(speed));
    MAKE(F_EVENT_ID, PyLong_FromLong(event_id));
    MAKE(F_GENERATION_TYPE, generation_type < 0 ? Py_NewRef(Py_None)
                                                : PyLong_FromLong(generation_type));
#undef MAKE
    return DONE;
}

/* Add a fixed-size group's *count* elements, (id, unsigned value of *width*
 * bytes) each, to *io*. */
static int
decode_fixed_group(Reader *reader, const Layout *layout, PyObject *io,
                   Py_ssize_t count, Py_ssize_t width)
{
    if (!has(reader, count * (layout->id_width + width))) {
        return CANNOT;
    }
    for (Py_ssize_t index = 0; index < count; index++) {
        uint64_t id = take(reader, layout->id_width);
        uint64_t value = take(reader, width);
        PyObject *key = PyLong_FromUnsignedLongLong(id);
        if (key == NULL) {
            return FAILED;
        }
        STEP(put_element(io, key, PyLong_FromUnsignedLongLong(value)));
    }
    return DONE;
}

/* Add Codec 8E's NX group of *count* elements, (u16 id, u16 length, bytes)
 * each, to *io*: each value is allocated once its bytes are found there. */
static int
decode_variable_group(Reader *reader, PyObject *io, Py_ssize_t count)
{
    for (Py_ssize_t index = 0; index < count; index++) {
        if (!has(reader, NX_HEAD_SIZE)) {
            return CANNOT;
        }
        uint64_t id = take(reader, 2);
        Py_ssize_t length = (Py_ssize_t)take(reader, 2);
        if (!has(reader, length)) {
            return CANNOT;
        }
        PyObject *key = PyLong_FromUnsignedLongLong(id);
        if (key == NULL) {
            return FAILED;
        }
        const char *value = (const char *)reader->data + reader->at;
        reader->at += length;
        STEP(put_element(io, key, PyBytes_FromStringAndSize(value, length)));
    }
    return DONE;
}

/* The record's IO elements, after its head, into *io* in wire order, and
 * how many each group holds into *counts*. N total, *total*, must count
 * them all. */
static int
decode_io(Reader *reader, const Layout *layout, PyObject *io, Py_ssize_t total,
          Py_ssize_t counts[LAYOUT_COUNTS])
{
    Py_ssize_t elements = 0;
    for (int group = 0; group < FIXED_GROUPS; group++) {
        if (!has(reader, layout->count_width)) {
            return CANNOT;
        }
        counts[group] = (Py_ssize_t)take(reader, layout->count_width);
        STEP(decode_fixed_group(reader, layout, io, counts[group],
                                VALUE_WIDTHS[group]));
        elements += counts[group];
    }
    if (layout->has_variable_group) {
        if (!has(reader, 2)) {
            return CANNOT;
        }
        counts[VARIABLE_GROUP] = (Py_ssize_t)take(reader, 2);
        elements += counts[VARIABLE_GROUP];
    }
    if (elements != total) {
        return CANNOT;
    }
    return decode_variable_group(reader, io, counts[VARIABLE_GROUP]);
}

/* The io_layout of the packet's last record: records of one packet mostly
 * have the same shape, and share the tuple, as the Python decoder's records
 * of one shape do. */
typedef struct {
    PyObject *tuple;
    Py_ssize_t counts[LAYOUT_COUNTS];
} LayoutCache;

/* A new reference to the io_layout tuple of *counts*, or NULL. */
static PyObject *
io_layout(LayoutCache *cache, const Py_ssize_t counts[LAYOUT_COUNTS])
{
    if (cache->tuple != NULL
        && memcmp(cache->counts, counts, sizeof cache->counts) == 0) {
        return Py_NewRef(cache->tuple);
    }
    PyObject *tuple = PyTuple_New(LAYOUT_COUNTS);
    if (tuple == NULL) {
        return NULL;
    }
    for (Py_ssize_t index = 0; index < LAYOUT_COUNTS; index++) {
        PyObject *count = PyLong_FromSsize_t(counts[index]);
        if (count == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, index, count);
    }
    Py_XSETREF(cache->tuple, Py_NewRef(tuple));
    memcpy(cache->counts, counts, sizeof cache->counts);
    return tuple;
}

/* The record at the reader, an instance of *record_type*, into *record*; the
 * reader then stands after it. */
static int
decode_record(Reader *reader, const Layout *layout, PyTypeObject *record_type,
              LayoutCache *cache, PyObject **record)
{
    PyObject *fields[RECORD_FIELDS] = {NULL};
    Py_ssize_t counts[LAYOUT_COUNTS] = {0};
    Py_ssize_t start = reader->at, total = 0;
    int outcome = decode_head(reader, layout, fields, &total);
    if (outcome != DONE) {
        goto failed;
    }
    fields[F_IO] = PyDict_New();
    if (fields[F_IO] == NULL) {
        outcome = FAILED;
        goto failed;
    }
    outcome = decode_io(reader, layout, fields[F_IO], total, counts);
    if (outcome != DONE) {
        goto failed;
    }
    fields[F_IO_LAYOUT] = io_layout(cache, counts);
    fields[F_WIRE] = PyBytes_FromStringAndSize(
        (const char *)reader->data + start, reader->at - start);
    if (fields[F_IO_LAYOUT] == NULL || fields[F_WIRE] == NULL) {
        outcome = FAILED;
        goto failed;
    }
    *record = new_tuple(record_type, fields, RECORD_FIELDS);
    return *record == NULL ? FAILED : DONE;
failed:
    release(fields, RECORD_FIELDS);
    return outcome;
}

/* The records of the payload the reader stands at, *count* of them, into
 * *records*: a new tuple. */
static int
decode_records(Reader *reader, const Layout *layout, PyTypeObject *record_type,
               Py_ssize_t count, PyObject **records)
{
    LayoutCache cache = {NULL, {0}};
    int outcome = DONE;
    *records = PyTuple_New(count);
    if (*records == NULL) {
        return FAILED;
    }
    for (Py_ssize_t index = 0; index < count && outcome == DONE; index++) {
        PyObject *record = NULL;
        outcome = decode_record(reader, layout, record_type, &cache, &record);
        if (outcome == DONE) {
            PyTuple_SET_ITEM(*records, index, record);
        }
    }
    Py_XDECREF(cache.tuple);
    if (outcome == DONE && reader->at != reader->end) {
        outcome = CANNOT; /* bytes left after the records */
    }
    if (outcome != DONE) {
        Py_CLEAR(*records);
    }
    return outcome;
}

/* The payload buffer[start:end] as a reader past its codec id and first
 * record count, with its layout's index, and the record count. CANNOT for
 * any argument that the Python decoder should judge: offsets outside the
 * buffer, a codec without records, counts that disagree. */
static int
open_payload(PyObject *buffer, PyObject *start_object, PyObject *end_object,
             Reader *reader, Py_ssize_t *codec_index, Py_ssize_t *count)
{
    if (!PyBytes_CheckExact(buffer) || !PyLong_CheckExact(start_object)
        || !PyLong_CheckExact(end_object)) {
        return CANNOT;
    }
    Py_ssize_t start = PyLong_AsSsize_t(start_object);
    Py_ssize_t end = start == -1 && PyErr_Occurred() ? -1
                                                     : PyLong_AsSsize_t(end_object);
    if (end == -1 && PyErr_Occurred()) {
        PyErr_Clear(); /* an offset past Py_ssize_t: no buffer is that long */
        return CANNOT;
    }
    /* In this order, so that end - start cannot overflow. */
    if (start < 0 || start > end || end > PyBytes_GET_SIZE(buffer)
        || end - start < 3) {
        return CANNOT;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(buffer);
    for (*codec_index = 0; *codec_index < CODECS; (*codec_index)++) {
        if (LAYOUTS[*codec_index].codec_id == data[start]) {
            break;
        }
    }
    if (*codec_index == CODECS) {
        return CANNOT;
    }
    *count = data[start + 1];
    if (data[end - 1] != *count) {
        return CANNOT;
    }
    reader->data = data;
    reader->at = start + 2;
    reader->end = end - 1;
    return DONE;
}

static int
is_tuple_type(PyObject *candidate)
{
    return PyType_Check(candidate)
           && PyType_IsSubtype((PyTypeObject *)candidate, &PyTuple_Type);
}

PyDoc_STRVAR(decode_avl_payload_doc,
"decode_avl_payload(buffer, start, end, record_type, packet_type, codecs)\n"
"--\n\n"
"The packet that avl.decode_avl_payload(buffer, start, end) returns, made of\n"
"*packet_type* and *record_type* (AvlPacket and AvlRecord) and one of\n"
"*codecs* (Codec.CODEC8, CODEC8E and CODEC16, in this order); or None where\n"
"the Python decoder must judge the payload, as for every one it rejects.");

static PyObject *
decode_avl_payload(PyObject *module, PyObject *const *arguments, Py_ssize_t count)
{
    (void)module;
    if (count != 6) {
        PyErr_SetString(PyExc_TypeError, "decode_avl_payload() takes 6 arguments");
        return NULL;
    }
    PyObject *buffer = arguments[0], *start = arguments[1], *end = arguments[2],
             *record_type = arguments[3], *packet_type = arguments[4],
             *codecs = arguments[5];
    if (!is_tuple_type(record_type) || !is_tuple_type(packet_type)
        || !PyTuple_CheckExact(codecs) || PyTuple_GET_SIZE(codecs) != CODECS) {
        PyErr_SetString(PyExc_TypeError,
                        "decode_avl_payload(): unexpected arguments");
        return NULL;
    }
    Reader reader;
    Py_ssize_t codec_index, records_count;
    int outcome = open_payload(buffer, start, end, &reader, &codec_index,
                               &records_count);
    PyObject *fields[PACKET_FIELDS] = {NULL};
    if (outcome == DONE) {
        outcome = decode_records(&reader, &LAYOUTS[codec_index],
                                 (PyTypeObject *)record_type, records_count,
                                 &fields[P_RECORDS]);
    }
    if (outcome == FAILED) {
        return NULL;
    }
    if (outcome == CANNOT) {
        Py_RETURN_NONE;
    }
    fields[P_CODEC] = Py_NewRef(PyTuple_GET_ITEM(codecs, codec_index));
    fields[P_IO16] = Py_NewRef(Py_False);
    return new_tuple((PyTypeObject *)packet_type, fields, PACKET_FIELDS);
}

static PyMethodDef methods[] = {
    {"decode_avl_payload", (PyCFunction)(void (*)(void))decode_avl_payload,
     METH_FASTCALL, decode_avl_payload_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    "teltotwist.codec._fastavl",
    "AVL payloads decoded in C (see avl.decode_standard_avl_payload).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__fastavl(void)
{
    return PyModule_Create(&module_definition);
}
