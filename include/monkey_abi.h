/*
 * monkey_abi.h — proxy_reverse's own declaration of the subset of the Monkey v1.8.9
 * dynamic-plugin ABI that the adapter uses.
 *
 * This file is NOT Monkey's code and includes none of Monkey's headers. It is written from
 * the measured facts in ../shared/monkey-abi.md (x86_64, default CMake build: natural C
 * alignment, pointers/long/size_t/time_t/off_t 8 bytes, int 4). Section references below
 * (§n) point into that document. Every size and offset listed there is asserted by
 * src/monkey/layout_tests.rs, so a wrong declaration fails `cargo test` instead of
 * corrupting a running server.
 *
 * Struct and field names follow Monkey's where that helps reading the document side by side.
 * Types we only ever hold pointers to are left incomplete (opaque).
 *
 * Consumed by build.rs (bindgen → $OUT_DIR/monkey_abi.rs → src/monkey/sys.rs).
 */
#ifndef PROXY_REVERSE_MONKEY_ABI_H
#define PROXY_REVERSE_MONKEY_ABI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <pthread.h>

/* ------------------------------------------------------------------------------------------
 * Constants (§11). Integer types on the Rust side are chosen in build.rs: event masks and
 * plugin hook bits are u32, the event status is u8, everything else is i32 (C int).
 * ---------------------------------------------------------------------------------------- */

/* §11.1 Plugin */
#define MK_PLUGIN_STAGE_10          4
#define MK_PLUGIN_STAGE_20          8
#define MK_PLUGIN_STAGE_30          16
#define MK_PLUGIN_STAGE_40          32
#define MK_PLUGIN_STAGE_50          64
#define MK_PLUGIN_NETWORK_LAYER     128
#define MK_PLUGIN_STAGE             256   /* the only `hooks` value the vhost mapping accepts */
#define MK_PLUGIN_STATIC            0
#define MK_PLUGIN_DYNAMIC           1
#define MK_PLUGIN_THREAD            1     /* flag, no effect in 1.8.9 */
#define MK_PLUGIN_HEADER_EXTRA_ROWS 18

/* §4.1 stage return codes */
#define MK_PLUGIN_RET_NOT_ME        (-1)
#define MK_PLUGIN_RET_CONTINUE      100
#define MK_PLUGIN_RET_END           200
#define MK_PLUGIN_RET_CLOSE_CONX    300

#define MK_TRUE                     1
#define MK_FALSE                    0
#define MK_ERROR                    (-1)

/* §11.2 Events: types (struct mk_event.type) */
#define MK_EVENT_UNMODIFIED         (-1)
#define MK_EVENT_NOTIFICATION       0
#define MK_EVENT_LISTENER           1
#define MK_EVENT_FIFO               2
#define MK_EVENT_CONNECTION         3
#define MK_EVENT_CUSTOM             4
#define MK_EVENT_THREAD             5

/* §11.2 Events: masks (struct mk_event.mask, ev_add's uint32_t mask) */
#define MK_EVENT_EMPTY              0
#define MK_EVENT_READ               1
#define MK_EVENT_WRITE              4
#define MK_EVENT_SLEEP              8
#define MK_EVENT_CLOSE              8216  /* 16 | 8 | 8192 */
/* IDLE bits: OR-ed into struct mk_event.type (an int) to make the loop skip an event (§1.6-5) */
#define MK_EVENT_IDLE               24

/* §11.2 Events: behaviours (not used by the epoll backend) */
#define MK_EVENT_LEVEL              256
#define MK_EVENT_EDGE               512

/* §11.2 Events: status (struct mk_event.status, uint8_t) */
#define MK_EVENT_NONE               1
#define MK_EVENT_REGISTERED         2

#define MK_EVENT_QUEUE_SIZE         256
#define MK_EVENT_PRIORITY_DEFAULT   6

/* §11.2 connection close reasons */
#define MK_EP_SOCKET_CLOSED         0
#define MK_EP_SOCKET_ERROR          1
#define MK_EP_SOCKET_TIMEOUT        2
#define MK_EP_SOCKET_DONE           3

/* §11.3 / §7.2 channel write results (bit values) */
#define MK_CHANNEL_OK               0
#define MK_CHANNEL_DONE             1
#define MK_CHANNEL_ERROR            2
#define MK_CHANNEL_FLUSH            4
#define MK_CHANNEL_EMPTY            8
#define MK_CHANNEL_BUSY             16
#define MK_CHANNEL_UNKNOWN          32
#define MK_CHANNEL_SOCKET           0     /* channel type */

/* §11.3 / §10.9 stream input types (struct mk_stream_input.type) */
#define MK_STREAM_RAW               0     /* unsafe for large data, §7.4 */
#define MK_STREAM_IOV               1
#define MK_STREAM_FILE              2
#define MK_STREAM_SOCKET            3     /* unhandled by the writer */

/* §11.4 HTTP protocol (struct mk_http_request.protocol) */
#define MK_HTTP_PROTOCOL_UNKNOWN    (-1)
#define MK_HTTP_PROTOCOL_09         9
#define MK_HTTP_PROTOCOL_10         10
#define MK_HTTP_PROTOCOL_11         11

/* §5.1 method enum (struct mk_http_request.method) */
#define MK_METHOD_GET               0
#define MK_METHOD_POST              1
#define MK_METHOD_HEAD              2
#define MK_METHOD_PUT               3
#define MK_METHOD_DELETE            4
#define MK_METHOD_OPTIONS           5
#define MK_METHOD_UNKNOWN           7

/* §11.4 known-header indices (struct mk_http_header.type, index into parser.headers) */
#define MK_HEADER_ACCEPT              0
#define MK_HEADER_ACCEPT_CHARSET      1
#define MK_HEADER_ACCEPT_ENCODING     2
#define MK_HEADER_ACCEPT_LANGUAGE     3
#define MK_HEADER_AUTHORIZATION       4
#define MK_HEADER_CACHE_CONTROL       5
#define MK_HEADER_COOKIE              6
#define MK_HEADER_CONNECTION          7
#define MK_HEADER_CONTENT_LENGTH      8
#define MK_HEADER_CONTENT_RANGE       9
#define MK_HEADER_CONTENT_TYPE        10
#define MK_HEADER_HOST                11
#define MK_HEADER_HTTP2_SETTINGS      12
#define MK_HEADER_IF_MODIFIED_SINCE   13
#define MK_HEADER_LAST_MODIFIED       14
#define MK_HEADER_LAST_MODIFIED_SINCE 15
#define MK_HEADER_RANGE               16
#define MK_HEADER_REFERER             17
#define MK_HEADER_TRANSFER_ENCODING   18
#define MK_HEADER_UPGRADE             19
#define MK_HEADER_USER_AGENT          20
#define MK_HEADER_SIZEOF              21
#define MK_HEADER_OTHER               22

/* §5.3 parser.header_connection values */
#define MK_HTTP_PARSER_CONN_UNKNOWN   (-1)
#define MK_HTTP_PARSER_CONN_EMPTY     0
#define MK_HTTP_PARSER_CONN_KA        1
#define MK_HTTP_PARSER_CONN_CLOSE     2
#define MK_HTTP_PARSER_CONN_UPGRADE   4
#define MK_HTTP_PARSER_CONN_HTTP2_SE  8

/* §5.3 parser.header_transfer_encoding bits */
#define MK_HTTP_PARSER_TRANSFER_ENCODING_NONE      0
#define MK_HTTP_PARSER_TRANSFER_ENCODING_CHUNKED   1
#define MK_HTTP_PARSER_TRANSFER_ENCODING_GZIP      2
#define MK_HTTP_PARSER_TRANSFER_ENCODING_COMPRESS  4
#define MK_HTTP_PARSER_TRANSFER_ENCODING_DEFLATE   8
#define MK_HTTP_PARSER_TRANSFER_ENCODING_IDENTITY  16

/* §11.4 misc HTTP */
#define MK_REQUEST_STATUS_INCOMPLETE  (-1)
#define MK_REQUEST_STATUS_COMPLETED   0
#define SH_NOCGI                      0
#define SH_CGI                        1
#define MK_HEADER_TE_TYPE_CHUNKED     0
#define MK_HEADER_BREAKLINE           1
#define MK_CUSTOM_STATUS              7   /* status with headers.custom_status (§1.9) */
#define MK_REQUEST_CHUNK              4096
#define MK_PATH_BASE                  128
#define MK_HEADER_IOV                 32
#define MK_HEADER_EXTRA_SIZE          50

/* §11.5 log levels (api->_error) */
#define MK_INFO                       0x1000
#define MK_ERR                        0x1001
#define MK_WARN                       0x1002
#define MK_BUG                        0x1003

/* §11.5 config_section_get_key modes, file_get_info modes */
#define MK_RCONF_STR                  0
#define MK_RCONF_NUM                  1
#define MK_RCONF_BOOL                 2
#define MK_RCONF_LIST                 3
#define MK_FILE_EXISTS                1
#define MK_FILE_READ                  2
#define MK_FILE_EXEC                  4

/* ------------------------------------------------------------------------------------------
 * Opaque types: only ever used through pointers.
 * ---------------------------------------------------------------------------------------- */
struct mk_server;            /* §10.11: 888 bytes, only a few offsets known — never read */
struct mk_vhost;
struct mk_vhost_alias;
struct mk_sched_worker;
struct mk_net_connection;
struct mk_server_config;
struct mk_mimetype;
struct mk_rconf;
struct mk_rconf_section;
struct mk_event_fdt;
struct plugin_event;

/* Forward declarations of the complete types below (used in function pointer types). */
struct mk_plugin;
struct mk_http_session;
struct mk_http_request;
struct mk_stream;
struct mk_stream_input;
struct mk_channel;
struct mk_iov;
struct mk_http_header;
struct file_info;
struct mk_vhost_handler_param;

/* ------------------------------------------------------------------------------------------
 * §10.1 Small types
 * ---------------------------------------------------------------------------------------- */

/* mk_ptr_t — 16 bytes: a (pointer, length) view, not NUL-terminated in general (§10.1). */
typedef struct {
    char *data;          /* 0 */
    unsigned long len;   /* 8 */
} mk_ptr_t;

/* struct mk_list — 16 bytes, circular doubly linked, PREV FIRST; empty = self-linked (§10.1). */
struct mk_list {
    struct mk_list *prev;  /* 0 */
    struct mk_list *next;  /* 8 */
};

/* struct mk_iovec — 16 bytes, layout of POSIX struct iovec (§10.1). */
struct mk_iovec {
    void *iov_base;  /* 0 */
    size_t iov_len;  /* 8 */
};

/* ------------------------------------------------------------------------------------------
 * §10.4 / §7.1 Events
 * ---------------------------------------------------------------------------------------- */

/* struct mk_event — 72 bytes (§10.4, §7.1). Zero it before the first ev_add (§0-9). */
struct mk_event {
    int fd;                         /* 0 */
    int type;                       /* 4  MK_EVENT_CONNECTION / MK_EVENT_CUSTOM / ... */
    uint32_t mask;                  /* 8  registered interest; 0 = not registered */
    uint8_t status;                 /* 12 MK_EVENT_NONE / MK_EVENT_REGISTERED */
    void *data;                     /* 16 */
    int (*handler)(void *event);    /* 24 receives the struct mk_event * itself (§0-8) */
    struct mk_list _head;           /* 32 deferred-free queue link */
    struct mk_list _priority_head;  /* 48 must be NULL/NULL or valid */
    char priority;                  /* 64 */
};                                  /* 72 */

/* struct mk_event_loop — 24 bytes (§10.4). */
struct mk_event_loop {
    int size;                  /* 0 */
    int n_events;              /* 4 */
    struct mk_event *events;   /* 8 */
    void *data;                /* 16 backend context (epoll) */
};

/* struct mk_event_ctx of the epoll backend (mk_event_epoll.h in Monkey v1.8.9) — 16 bytes:
 * what mk_event_loop.data points to when ev_backend() returns "epoll". The loop dispatches
 * each epoll_event by its data.ptr alone (an mk_event: CUSTOM ones to their handler), never
 * by the epoll flags, so a plugin may register its own descriptors in efd with flags the
 * ev_add mask cannot express (EPOLLET). The flags that fired are not passed to handlers:
 * events[0 .. loop->n_events) is the batch of the last epoll_wait, dispatched in that
 * order, so a handler finds its own entry there by data.ptr. */
struct mk_event_ctx {
    int efd;                   /* 0 the epoll descriptor */
    int queue_size;            /* 4 events taken per epoll_wait */
    void *events;              /* 8 struct epoll_event[queue_size] */
};

/* ------------------------------------------------------------------------------------------
 * §10.11 Network layer vtable
 * ---------------------------------------------------------------------------------------- */

/* struct mk_plugin_network — 64 bytes (§10.11; used via cs->conn->net, §1.5). */
struct mk_plugin_network {
    int (*read)(struct mk_plugin *plugin, int fd, void *buf, int count);            /* 0 */
    int (*write)(struct mk_plugin *plugin, int fd, const void *buf, size_t count);  /* 8 */
    int (*writev)(struct mk_plugin *plugin, int fd, struct mk_iov *iov);            /* 16 */
    int (*close)(struct mk_plugin *plugin, int fd);                                 /* 24 */
    int (*send_file)(struct mk_plugin *plugin, int fd, int file_fd, off_t *offset,
                     size_t count);                                                 /* 32 */
    int (*event_interest)(struct mk_plugin *plugin, int fd, int fallback);          /* 40 */
    int buffer_size;                                                                /* 48 */
    struct mk_plugin *plugin;                                                       /* 56 */
};

/* ------------------------------------------------------------------------------------------
 * §10.9 Channels, streams, iov
 * ---------------------------------------------------------------------------------------- */

/* struct mk_iov — 40 bytes (§10.9). */
struct mk_iov {
    int iov_idx;                /* 0 */
    int buf_idx;                /* 4 */
    int size;                   /* 8 */
    unsigned long total_len;    /* 16 */
    struct mk_iovec *io;        /* 24 */
    void **buf_to_free;         /* 32 */
};

/* struct mk_channel — 56 bytes (§10.9). */
struct mk_channel {
    int type;                       /* 0  MK_CHANNEL_SOCKET */
    int fd;                         /* 4 */
    int status;                     /* 8 */
    struct mk_event *event;         /* 16 */
    struct mk_plugin_network *io;   /* 24 */
    struct mk_list streams;         /* 32 list of struct mk_stream (via _head) */
    void *thread;                   /* 48 */
};

/* struct mk_stream — 104 bytes (§10.9). */
struct mk_stream {
    int preserve;                                                  /* 0 */
    int encoding;                                                  /* 4 */
    int dynamic;                                                   /* 8 */
    size_t bytes_total;                                            /* 16 */
    off_t bytes_offset;                                            /* 24 */
    struct mk_channel *channel;                                    /* 32 */
    void *context;                                                 /* 40 */
    void (*cb_finished)(struct mk_stream *stream);                 /* 48 */
    void (*cb_bytes_consumed)(struct mk_stream *stream, long n);   /* 56 */
    void (*cb_exception)(struct mk_stream *stream, int err);       /* 64 */
    struct mk_list inputs;                                         /* 72 list of mk_stream_input */
    struct mk_list _head;                                          /* 88 link in channel->streams */
};

/* struct mk_stream_input — 88 bytes (§10.9, §7.3). */
struct mk_stream_input {
    int type;                                                      /* 0  MK_STREAM_* */
    int fd;                                                        /* 4 */
    int dynamic;                                                   /* 8  1 = Monkey free()s it */
    size_t bytes_total;                                            /* 16 */
    off_t bytes_offset;                                            /* 24 */
    void *buffer;                                                  /* 32 */
    void *context;                                                 /* 40 */
    void (*cb_consumed)(struct mk_stream_input *in, long n);       /* 48 */
    void (*cb_finished)(struct mk_stream_input *in);               /* 56 */
    struct mk_stream *stream;                                      /* 64 */
    struct mk_list _head;                                          /* 72 link in stream->inputs */
};

/* ------------------------------------------------------------------------------------------
 * §10.10 Scheduler connection
 * ---------------------------------------------------------------------------------------- */

/* struct mk_sched_handler — 48 bytes (§10.10): a connection's protocol (HTTP/1.x for every
 * plain listener), shared by its connections through mk_sched_conn.protocol. The scheduler
 * calls cb_read when the connection's socket is readable. */
struct mk_sched_conn;
struct mk_sched_handler {
    const char *name;                                             /* 0 */
    int (*cb_read)(struct mk_sched_conn *, struct mk_sched_worker *,
                   struct mk_server *);                           /* 8 */
    int (*cb_close)(struct mk_sched_conn *, struct mk_sched_worker *, int,
                    struct mk_server *);                          /* 16 */
    int (*cb_done)(struct mk_sched_conn *, struct mk_sched_worker *,
                   struct mk_server *);                           /* 24 */
    int (*cb_upgrade)(void *, void *, struct mk_server *);        /* 32 */
    int sched_extra_size;                                         /* 40 */
    char capabilities;                                            /* 44 */
};

/* struct mk_config_listener — 40 bytes (measured against v1.8.9's mk_config.h): one `Listen`
 * line; `flags` carries MK_CAP_SOCK_TLS for `Listen PORT tls`. */
struct mk_config_listener {
    char *address;             /* 0 */
    char *port;                /* 8 */
    uint32_t flags;            /* 16 MK_CAP_* */
    struct mk_list _head;      /* 24 */
};

/* struct mk_server_listen — 120 bytes (measured against v1.8.9's mk_server.h): a bound
 * listener; a connection's `server_listen` (MK_SCHED_CONN_PROP reads listen->flags). */
struct mk_server_listen {
    struct mk_event event;                 /* 0 */
    int server_fd;                         /* 72 */
    struct mk_plugin_network *network;     /* 80 the transport (TLS on a tls listener) */
    struct mk_sched_handler *protocol;     /* 88 */
    struct mk_config_listener *listen;     /* 96 */
    struct mk_list _head;                  /* 104 */
};

/* Listener capabilities (mk_config.h). */
#define MK_CAP_SOCK_PLAIN           4
#define MK_CAP_SOCK_TLS             8

/* struct mk_sched_conn — 200 bytes (§10.10); the session follows it in the same block. */
struct mk_sched_conn {
    struct mk_event event;                    /* 0   must stay first */
    int status;                               /* 72 */
    uint32_t properties;                      /* 76 */
    char is_timeout_on;                       /* 80 */
    time_t arrive_time;                       /* 88 */
    struct mk_sched_handler *protocol;        /* 96 */
    struct mk_server_listen *server_listen;   /* 104 */
    struct mk_plugin_network *net;            /* 112 */
    struct mk_channel channel;                /* 120 */
    struct mk_list timeout_head;              /* 176 */
    void *data;                               /* 192 */
};

/* ------------------------------------------------------------------------------------------
 * §10.8 / §10.11 HTTP helper structs
 * ---------------------------------------------------------------------------------------- */

/* struct mk_http_header — 56 bytes (§10.8, §5.2). */
struct mk_http_header {
    int type;              /* 0  MK_HEADER_* (0 also for unknown headers in header_list) */
    mk_ptr_t key;          /* 8 */
    mk_ptr_t val;          /* 24 */
    struct mk_list _head;  /* 40 link in parser.header_list */
};

/* struct file_info — 32 bytes (§10.11). */
struct file_info {
    size_t size;                    /* 0 */
    time_t last_modification;       /* 8 */
    int flags_read_only;            /* 16 */
    unsigned char exists;           /* 20 */
    unsigned char is_file;          /* 21 */
    unsigned char is_link;          /* 22 */
    unsigned char is_directory;     /* 23 */
    unsigned char exec_access;      /* 24 */
    unsigned char read_access;      /* 25 */
};

/* struct mk_vhost_handler_param — 32 bytes (§10.11): one `Match` rule parameter. */
struct mk_vhost_handler_param {
    mk_ptr_t p;            /* 0 */
    struct mk_list _head;  /* 16 */
};

/* struct mk_http_parser — 4136 bytes (§10.8). Natural alignment leaves 4 padding bytes
 * at 92 and at 1276. */
struct mk_http_parser {
    int i;                                                        /* 0 */
    int level;                                                    /* 4 */
    int status;                                                   /* 8 */
    int next;                                                     /* 12 */
    int length;                                                   /* 16 */
    int method;                                                   /* 20 */
    int start;                                                    /* 24 */
    int end;                                                      /* 28 */
    int chars;                                                    /* 32 */
    int header_host_port;                                         /* 36 */
    long body_received;                                           /* 40 */
    long header_content_length;                                   /* 48 -1 if absent */
    int header_connection;                                        /* 56 MK_HTTP_PARSER_CONN_* */
    int header_upgrade;                                           /* 60 */
    int header_transfer_encoding;                                 /* 64 MK_HTTP_PARSER_TRANSFER_ENCODING_* */
    int header_key;                                               /* 68 */
    int header_sep;                                               /* 72 */
    int header_val;                                               /* 76 */
    int header_min;                                               /* 80 */
    int header_max;                                               /* 84 */
    int headers_extra_count;                                      /* 88 */
    struct mk_http_header headers[MK_HEADER_SIZEOF];              /* 96   (21 x 56) */
    int header_count;                                             /* 1272 */
    struct mk_list header_list;                                   /* 1280 */
    struct mk_http_header headers_extra[MK_HEADER_EXTRA_SIZE];    /* 1296 (50 x 56) */
    size_t chunk_total_size_received;                             /* 4096 */
    char *chunk_expected_start;                                   /* 4104 */
    size_t chunk_expected_size;                                   /* 4112 */
    char *chunk_processed_start;                                  /* 4120 */
    char *chunk_processed_end;                                    /* 4128 */
};

/* struct response_headers — 1000 bytes (§10.7), at mk_http_request offset 1016. */
struct response_headers {
    int status;                                  /* 0   must be a valid code before stage30 returns (§0-2) */
    int connection;                              /* 4 */
    mk_ptr_t custom_status;                      /* 8   used with MK_CUSTOM_STATUS */
    long content_length;                         /* 24  -1 = no Content-Length header */
    long real_length;                            /* 32 */
    int cgi;                                     /* 40  SH_NOCGI / SH_CGI */
    int pconnections_left;                       /* 44 */
    int breakline;                               /* 48 */
    int transfer_encoding;                       /* 52  -1 none, 0 chunked */
    int upgrade;                                 /* 56 */
    int ranges[2];                               /* 60 */
    time_t last_modified;                        /* 72 */
    mk_ptr_t allow_methods;                      /* 80 */
    mk_ptr_t content_type;                       /* 96  a whole header line incl. CRLF */
    mk_ptr_t content_encoding;                   /* 112 */
    char *location;                              /* 128 */
    int etag_len;                                /* 136 */
    char etag_buf[32];                           /* 140 */
    struct mk_iov *_extra_rows;                  /* 176 */
    int sent;                                    /* 184 */
    struct mk_iov headers_iov;                   /* 192 */
    struct mk_iovec __iov_io[MK_HEADER_IOV];     /* 232 */
    void *__iov_buf[MK_HEADER_IOV];              /* 744 */
};

/* ------------------------------------------------------------------------------------------
 * §10.6 Request, §10.5 session
 * ---------------------------------------------------------------------------------------- */

/* struct mk_http_request — 2016 bytes (§10.6). All mk_ptr_t fields point into cs->body. */
struct mk_http_request {
    int status;                               /* 0 */
    int protocol;                             /* 4    MK_HTTP_PROTOCOL_* */
    int user_home;                            /* 8 */
    long port;                                /* 16   Host-header port, 0 if absent */
    uint64_t stream_size;                     /* 24 */
    struct mk_stream stream;                  /* 32   stream._head at 120, stream.inputs at 104 */
    struct mk_stream_input in_headers;        /* 136 */
    struct mk_stream_input in_headers_extra;  /* 224 */
    struct mk_stream_input in_file;           /* 312 */
    struct mk_stream_input page_stream;       /* 400 */
    int headers_len;                          /* 488 */
    int method;                               /* 492  MK_METHOD_* */
    mk_ptr_t method_p;                        /* 496 */
    mk_ptr_t uri;                             /* 512 */
    mk_ptr_t uri_processed;                   /* 528 */
    mk_ptr_t protocol_p;                      /* 544 */
    mk_ptr_t body;                            /* 560  unused */
    int content_length;                       /* 576  unused (never set) */
    mk_ptr_t _content_length;                 /* 584  cleared unless POST/PUT */
    mk_ptr_t content_type;                    /* 600 */
    mk_ptr_t connection;                      /* 616  len -1 if absent */
    mk_ptr_t host;                            /* 632  without :port */
    mk_ptr_t host_port;                       /* 648  unused */
    mk_ptr_t if_modified_since;               /* 664 */
    mk_ptr_t last_modified_since;             /* 680 */
    mk_ptr_t range;                           /* 696 */
    mk_ptr_t data;                            /* 712  request body */
    mk_ptr_t real_path;                       /* 728 */
    char real_path_static[MK_PATH_BASE];      /* 744 */
    mk_ptr_t query_string;                    /* 872  without '?' */
    int stage30_blocked;                      /* 888 */
    void *stage30_handler;                    /* 896  the plugin that handled stage30 */
    int file_fd;                              /* 904 */
    struct file_info file_info;               /* 912 */
    int vhost_fdt_id;                         /* 944 */
    unsigned int vhost_fdt_hash;              /* 948 */
    int vhost_fdt_enabled;                    /* 952 */
    struct mk_vhost *host_conf;               /* 960 */
    struct mk_vhost_alias *host_alias;        /* 968 */
    void *handler_data;                       /* 976  NULL at request start; ours (§1.3-8) */
    struct mk_http_session *session;          /* 984 */
    void *thread;                             /* 992 */
    struct mk_list _head;                     /* 1000 */
    struct response_headers headers;          /* 1016 */
};

/* struct mk_http_session — 10344 bytes (§10.5); lives right behind its mk_sched_conn. */
struct mk_http_session {
    int _sched_init;                          /* 0 */
    int socket;                               /* 4     client fd */
    int pipelined;                            /* 8 */
    int counter_connections;                  /* 12 */
    int status;                               /* 16    MK_REQUEST_STATUS_* */
    int close_now;                            /* 20 */
    struct mk_channel *channel;               /* 24    == &conn->channel */
    struct mk_sched_conn *conn;               /* 32 */
    unsigned int body_size;                   /* 40 */
    unsigned int body_length;                 /* 44 */
    struct mk_list request_list;              /* 48 */
    time_t init_time;                         /* 64 */
    char *body;                               /* 72    raw request bytes (not pristine, §5.4) */
    char body_fixed[MK_REQUEST_CHUNK + 1];    /* 80 */
    struct mk_http_request sr_fixed;          /* 4184 */
    struct mk_http_parser parser;             /* 6200 */
    struct mk_server *server;                 /* 10336 */
};

/* ------------------------------------------------------------------------------------------
 * §10.2 / §10.3 / §4.1 The plugin object and its stage table
 * ---------------------------------------------------------------------------------------- */

struct plugin_api;
struct mk_plugin_stage;

/* struct mk_plugin — 168 bytes (§10.2, §1.2). The exported object must be writable (§0-4). */
struct mk_plugin {
    int flags;                                                   /* 0   (0) */
    const char *shortname;                                       /* 8 */
    const char *name;                                            /* 16 */
    const char *version;                                         /* 24 */
    unsigned int hooks;                                          /* 32  MK_PLUGIN_STAGE exactly */
    char capabilities;                                           /* 36  (0) */
    struct plugin_api *api;                                      /* 40  set by Monkey */
    int (*init_plugin)(struct mk_plugin *plugin, char *confdir); /* 48  must not return < 0 (§0-6) */
    int (*exit_plugin)(struct mk_plugin *plugin);                /* 56 */
    int (*master_init)(struct mk_server *server);                /* 64 */
    void (*worker_init)(struct mk_server *server);               /* 72 */
    struct mk_plugin_network *network;                           /* 80  NULL */
    struct mk_plugin_stage *stage;                               /* 88 */
    void *handler;                                               /* 96  dlopen handle (Monkey) */
    char *path;                                                  /* 104 (Monkey) */
    pthread_key_t *thread_key;                                   /* 112 optional */
    struct mk_list _head;                                        /* 120 (Monkey) */
    struct mk_list stage_list;                                   /* 136 (Monkey) */
    int load_type;                                               /* 152 (Monkey: MK_PLUGIN_DYNAMIC) */
    struct mk_server *server_ctx;                                /* 160 (Monkey) */
};

/* struct mk_plugin_stage — 96 bytes (§10.3, signatures §4.1). */
struct mk_plugin_stage {
    int (*stage10)(int socket);                                                  /* 0 */
    int (*stage20)(struct mk_http_session *cs, struct mk_http_request *sr);     /* 8 */
    int (*stage30)(struct mk_plugin *plugin, struct mk_http_session *cs,
                   struct mk_http_request *sr, int n_params,
                   struct mk_list *params);                                      /* 16 */
    void (*stage30_thread)(struct mk_plugin *plugin, struct mk_http_session *cs,
                           struct mk_http_request *sr, int n_params,
                           struct mk_list *params);                              /* 24 never called */
    int (*stage30_hangup)(struct mk_plugin *plugin, struct mk_http_session *cs,
                          struct mk_http_request *sr);                           /* 32 */
    int (*stage40)(struct mk_http_session *cs, struct mk_http_request *sr);     /* 40 */
    int (*stage50)(int socket);                                                  /* 48 */
    struct mk_plugin *plugin;                                                    /* 56 Monkey-internal copies */
    struct mk_list _head;                                                        /* 64 */
    struct mk_list _parent_head;                                                 /* 80 */
};

/* ------------------------------------------------------------------------------------------
 * §6 struct plugin_api — 704 bytes, 88 members in order (default build: no TRACE, no
 * JEMALLOC_STATS). Slots marked NULL are never set by Monkey 1.8.9; `config` is NULL too.
 * Where Monkey declares an empty parameter list `()` we give the real prototype (§6 notes)
 * or `(void)`.
 * ---------------------------------------------------------------------------------------- */
struct plugin_api {
    /* sockets */
    int (*socket_cork_flag)(int fd, int state);                                   /* 0 */
    int (*socket_reset)(int fd);                                                  /* 8 */
    int (*socket_set_tcp_fastopen)(int fd);                                       /* 16 */
    int (*socket_set_tcp_nodelay)(int fd);                                        /* 24 */
    int (*socket_set_tcp_reuseport)(int fd);                                      /* 32 */
    int (*socket_connect)(char *host, int port, int async);                       /* 40 exit(1) on error: avoid (§0-7) */
    int (*socket_open)(char *unix_path, int async);                               /* 48 */
    int (*socket_set_nonblocking)(int fd);                                        /* 56 */
    int (*socket_create)(int domain, int type, int protocol);                     /* 64 */
    int (*socket_close)(int fd);                                                  /* 72 NULL */
    int (*socket_read)(int fd, void *buf, int count);                             /* 80 NULL */
    int (*socket_send_file)(int socket_fd, int file_fd, off_t *offset,
                            size_t count);                                        /* 88 NULL */
    int (*socket_ip_str)(int fd, char **buf, int size, unsigned long *len);       /* 96 */
    struct mk_net_connection *(*net_conn_create)(char *addr, int port);           /* 104 crashes: avoid */

    /* data */
    struct mk_server_config *config;                                              /* 112 NULL */
    struct mk_list *plugins;                                                      /* 120 */

    /* logging, requests, memory */
    void (*_error)(int level, const char *format, ...);                           /* 128 */
    int (*http_request_end)(struct mk_plugin *plugin, struct mk_http_session *cs,
                            int close);                                           /* 136 */
    int (*http_request_error)(int status, struct mk_http_session *cs,
                              struct mk_http_request *sr,
                              struct mk_plugin *plugin);                          /* 144 */
    void *(*mem_alloc)(size_t size);                                              /* 152 */
    void *(*mem_alloc_z)(size_t size);                                            /* 160 */
    void *(*mem_realloc)(void *ptr, size_t size);                                 /* 168 */
    void (*mem_free)(void *ptr);                                                  /* 176 */
    void (*pointer_set)(mk_ptr_t *p, char *data);                                 /* 184 */
    void (*pointer_print)(mk_ptr_t p);                                            /* 192 */
    char *(*pointer_to_buf)(mk_ptr_t p);                                          /* 200 */

    /* strings */
    int (*str_itop)(uint64_t value, mk_ptr_t *p);                                 /* 208 */
    int (*str_search)(const char *haystack, const char *needle,
                      int case_sensitive);                                        /* 216 */
    int (*str_search_n)(const char *haystack, const char *needle,
                        int case_sensitive, int len);                             /* 224 */
    int (*str_char_search)(const char *string, int c, int len);                   /* 232 */
    char *(*str_build)(char **buffer, unsigned long *len, const char *format,
                       ...);                                                      /* 240 */
    char *(*str_dup)(const char *s);                                              /* 248 */
    char *(*str_copy_substr)(const char *string, int pos_init, int pos_end);      /* 256 */
    struct mk_list *(*str_split_line)(const char *line);                          /* 264 */
    void (*str_split_free)(struct mk_list *list);                                 /* 272 */

    /* files */
    char *(*file_to_buffer)(const char *path);                                    /* 280 */
    int (*file_get_info)(const char *path, struct file_info *f_info, int mode);   /* 288 */

    /* response headers */
    int (*header_prepare)(struct mk_plugin *plugin, struct mk_http_session *cs,
                          struct mk_http_request *sr);                            /* 296 never from stage30 (§0-3) */
    struct mk_http_header *(*header_get)(int type, struct mk_http_request *sr,
                                         const char *key, unsigned int len);      /* 304 */
    int (*header_add)(struct mk_http_request *sr, char *row, int len);            /* 312 */
    void (*header_set_http_status)(struct mk_http_request *sr, int status);       /* 320 */

    /* channels and streams */
    struct mk_stream *(*stream_new)(int type, struct mk_channel *channel,
                                    void *buffer, size_t size, void *data,
                                    void (*cb_finished)(struct mk_stream *),
                                    void (*cb_bytes_consumed)(struct mk_stream *, long),
                                    void (*cb_exception)(struct mk_stream *, int)); /* 328 NULL */
    struct mk_channel *(*channel_new)(int type, int fd);                          /* 336 */
    int (*channel_flush)(struct mk_channel *channel);                             /* 344 */
    int (*channel_write)(struct mk_channel *channel, size_t *count);              /* 352 */
    void (*channel_append_stream)(struct mk_channel *channel,
                                  struct mk_stream *stream);                      /* 360 */
    void (*stream_set)(struct mk_stream *stream, int type,
                       struct mk_channel *channel, void *buffer, size_t size,
                       void *data,
                       void (*cb_finished)(struct mk_stream *),
                       void (*cb_bytes_consumed)(struct mk_stream *, long),
                       void (*cb_exception)(struct mk_stream *, int));            /* 368 NULL */

    /* iov */
    struct mk_iov *(*iov_create)(int n, int offset);                              /* 376 */
    struct mk_iov *(*iov_realloc)(struct mk_iov *iov, int new_size);              /* 384 */
    void (*iov_free)(struct mk_iov *iov);                                         /* 392 */
    void (*iov_free_marked)(struct mk_iov *iov);                                  /* 400 */
    int (*iov_add)(struct mk_iov *iov, void *buf, int len, int free);             /* 408 */
    int (*iov_set_entry)(struct mk_iov *iov, void *buf, int len, int free,
                         int idx);                                                /* 416 */
    ssize_t (*iov_send)(int fd, struct mk_iov *iov);                              /* 424 */
    void (*iov_print)(struct mk_iov *iov);                                        /* 432 */

    /* plugins */
    void *(*plugin_load_symbol)(void *handle, const char *symbol);                /* 440 */

    /* event loop */
    struct mk_event_loop *(*ev_loop_create)(int size);                            /* 448 */
    struct mk_event_fdt *(*ev_get_fdt)(void);                                     /* 456 NULL */
    int (*ev_add)(struct mk_event_loop *loop, int fd, int type, uint32_t mask,
                  void *event);                                                   /* 464 */
    int (*ev_del)(struct mk_event_loop *loop, struct mk_event *event);            /* 472 */
    int (*ev_timeout_create)(struct mk_event_loop *loop, time_t sec, long nsec,
                             void *event);                                        /* 480 handler never runs (§1.8) */
    int (*ev_channel_create)(struct mk_event_loop *loop, int *r_fd, int *w_fd,
                             void *event);                                        /* 488 */
    int (*ev_wait)(struct mk_event_loop *loop);                                   /* 496 */
    char *(*ev_backend)(void);                                                    /* 504 */

    /* mime types */
    struct mk_mimetype *(*mimetype_lookup)(struct mk_server *server, char *name); /* 512 */

    /* configuration */
    struct mk_rconf *(*config_open)(const char *path);                            /* 520 */
    struct mk_rconf *(*config_create)(const char *path);                          /* 528 */
    void (*config_free)(struct mk_rconf *conf);                                   /* 536 */
    struct mk_rconf_section *(*config_section_get)(struct mk_rconf *conf,
                                                   const char *name);             /* 544 */
    void *(*config_section_get_key)(struct mk_rconf_section *section, char *key,
                                    int mode);                                    /* 552 */

    /* scheduler */
    struct mk_event_loop *(*sched_loop)(void);                                    /* 560 worker threads only */
    int (*sched_remove_client)(int fd, struct mk_server *server);                 /* 568 stub */
    struct mk_sched_conn *(*sched_get_connection)(struct mk_sched_worker *worker,
                                                  int fd);                        /* 576 stub */
    void (*sched_event_free)(struct mk_event *event);                             /* 584 */
    struct mk_sched_worker *(*sched_worker_info)(void);                           /* 592 */

    /* workers */
    int (*worker_spawn)(void (*func)(void *), void *arg, pthread_t *tid);         /* 600 */
    int (*worker_rename)(const char *title);                                      /* 608 */

    /* legacy events (all NULL) */
    int (*event_add)(int fd, int mode, struct mk_plugin *plugin,
                     unsigned int behavior);                                      /* 616 NULL */
    int (*event_del)(int fd);                                                     /* 624 NULL */
    struct plugin_event *(*event_get)(int fd);                                    /* 632 NULL */
    int (*event_socket_change_mode)(int fd, int mode, unsigned int behavior);     /* 640 NULL */

    /* time */
    int (*time_unix)(struct mk_server *server);                                   /* 648 pass plugin->server_ctx */
    int (*time_to_gmt)(char **data, time_t date);                                 /* 656 */
    mk_ptr_t *(*time_human)(struct mk_server *server);                            /* 664 */
    /* (trace, errno_print exist only with -DTRACE: absent in the default build) */

    /* misc */
    void (*stacktrace)(void);                                                     /* 672 */
    int (*kernel_version)(void);                                                  /* 680 */
    int (*kernel_features_print)(char *buffer, size_t size,
                                 struct mk_server *server);                       /* 688 */
    struct mk_vhost_handler_param *(*handler_param_get)(int id,
                                                        struct mk_list *params);  /* 696 */
    /* (je_mallctl exists only with -DJEMALLOC_STATS: absent) */
};                                                                                /* 704 */

#endif /* PROXY_REVERSE_MONKEY_ABI_H */
