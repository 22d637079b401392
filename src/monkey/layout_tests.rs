//! Layout tests for the bindgen output of `include/monkey_abi.h`.
//!
//! Every size and offset here is copied from `../shared/monkey-abi.md` §10 (measured against
//! a real Monkey v1.8.9 build on x86_64), §6 (`plugin_api`) and §11 (constants). If one of
//! these fails, the header is wrong and the plugin would corrupt a running server: fix the
//! header, never the expected value (unless the document itself is corrected).

use std::mem::{align_of, offset_of, size_of};

use super::sys::*;

/// Asserts the size of a type and the offsets of the listed fields.
macro_rules! layout {
    ($t:ty, size $size:expr; $($field:ident @ $off:expr),* $(,)?) => {{
        assert_eq!(size_of::<$t>(), $size, concat!("size_of::<", stringify!($t), ">()"));
        $(
            assert_eq!(
                offset_of!($t, $field),
                $off,
                concat!("offset of ", stringify!($t), ".", stringify!($field)),
            );
        )*
    }};
}

#[test]
fn small_types() {
    // §10.1
    layout!(mk_ptr_t, size 16; data @ 0, len @ 8);
    layout!(mk_list, size 16; prev @ 0, next @ 8);
    layout!(mk_iovec, size 16; iov_base @ 0, iov_len @ 8);
    assert_eq!(size_of::<mk_iovec>(), size_of::<libc::iovec>());
}

#[test]
fn mk_plugin_layout() {
    // §10.2
    layout!(mk_plugin, size 168;
        flags @ 0, shortname @ 8, name @ 16, version @ 24, hooks @ 32, capabilities @ 36,
        api @ 40, init_plugin @ 48, exit_plugin @ 56, master_init @ 64, worker_init @ 72,
        network @ 80, stage @ 88, handler @ 96, path @ 104, thread_key @ 112, _head @ 120,
        stage_list @ 136, load_type @ 152, server_ctx @ 160,
    );
    assert_eq!(align_of::<mk_plugin>(), 8);
}

#[test]
fn mk_plugin_stage_layout() {
    // §10.3
    layout!(mk_plugin_stage, size 96;
        stage10 @ 0, stage20 @ 8, stage30 @ 16, stage30_thread @ 24, stage30_hangup @ 32,
        stage40 @ 40, stage50 @ 48, plugin @ 56, _head @ 64, _parent_head @ 80,
    );
}

#[test]
fn mk_event_and_loop_layout() {
    // §10.4, §7.1
    layout!(mk_event, size 72;
        fd @ 0, type_ @ 4, mask @ 8, status @ 12, data @ 16, handler @ 24, _head @ 32,
        _priority_head @ 48, priority @ 64,
    );
    assert_eq!(align_of::<mk_event>(), 8);
    layout!(mk_event_loop, size 24; size @ 0, n_events @ 4, events @ 8, data @ 16);
    layout!(mk_event_ctx, size 16; efd @ 0, queue_size @ 4, events @ 8);
}

#[test]
fn mk_event_default_is_all_zero() {
    // §0-9: ev_add treats mask == 0 as "not registered"; _priority_head must be NULL/NULL.
    let ev = mk_event::default();
    assert_eq!(ev.mask, 0);
    assert_eq!(ev.status, 0);
    assert!(ev._priority_head.prev.is_null() && ev._priority_head.next.is_null());
    assert!(ev._head.prev.is_null() && ev._head.next.is_null());
    assert!(ev.handler.is_none());
    assert!(ev.data.is_null());
}

#[test]
fn mk_http_session_layout() {
    // §10.5
    layout!(mk_http_session, size 10344;
        _sched_init @ 0, socket @ 4, pipelined @ 8, counter_connections @ 12, status @ 16,
        close_now @ 20, channel @ 24, conn @ 32, body_size @ 40, body_length @ 44,
        request_list @ 48, init_time @ 64, body @ 72, body_fixed @ 80, sr_fixed @ 4184,
        parser @ 6200, server @ 10336,
    );
    // §5.2: the header list is at session offset 7480.
    assert_eq!(
        offset_of!(mk_http_session, parser) + offset_of!(mk_http_parser, header_list),
        7480
    );
    // §10.5: the session follows its 200-byte mk_sched_conn in one allocation.
    assert_eq!(size_of::<mk_sched_conn>(), 200);
}

#[test]
fn mk_http_request_layout() {
    // §10.6
    layout!(mk_http_request, size 2016;
        status @ 0, protocol @ 4, user_home @ 8, port @ 16, stream_size @ 24, stream @ 32,
        in_headers @ 136, in_headers_extra @ 224, in_file @ 312, page_stream @ 400,
        headers_len @ 488, method @ 492, method_p @ 496, uri @ 512, uri_processed @ 528,
        protocol_p @ 544, body @ 560, content_length @ 576, _content_length @ 584,
        content_type @ 600, connection @ 616, host @ 632, host_port @ 648,
        if_modified_since @ 664, last_modified_since @ 680, range @ 696, data @ 712,
        real_path @ 728, real_path_static @ 744, query_string @ 872, stage30_blocked @ 888,
        stage30_handler @ 896, file_fd @ 904, file_info @ 912, vhost_fdt_id @ 944,
        vhost_fdt_hash @ 948, vhost_fdt_enabled @ 952, host_conf @ 960, host_alias @ 968,
        handler_data @ 976, session @ 984, thread @ 992, _head @ 1000, headers @ 1016,
    );
    // §10.6 / §1.3-6: sr->stream._head at 120, sr->stream.inputs at 104.
    assert_eq!(
        offset_of!(mk_http_request, stream) + offset_of!(mk_stream, _head),
        120
    );
    assert_eq!(
        offset_of!(mk_http_request, stream) + offset_of!(mk_stream, inputs),
        104
    );
    // §1.9: headers.content_length, headers.content_type inside the request.
    assert_eq!(
        offset_of!(mk_http_request, headers) + offset_of!(response_headers, content_length),
        1040
    );
}

#[test]
fn response_headers_layout() {
    // §10.7
    layout!(response_headers, size 1000;
        status @ 0, connection @ 4, custom_status @ 8, content_length @ 24, real_length @ 32,
        cgi @ 40, pconnections_left @ 44, breakline @ 48, transfer_encoding @ 52,
        upgrade @ 56, ranges @ 60, last_modified @ 72, allow_methods @ 80,
        content_type @ 96, content_encoding @ 112, location @ 128, etag_len @ 136,
        etag_buf @ 140, _extra_rows @ 176, sent @ 184, headers_iov @ 192, __iov_io @ 232,
        __iov_buf @ 744,
    );
}

#[test]
fn mk_http_parser_layout() {
    // §10.8
    layout!(mk_http_parser, size 4136;
        i @ 0, level @ 4, status @ 8, next @ 12, length @ 16, method @ 20, start @ 24,
        end @ 28, chars @ 32, header_host_port @ 36, body_received @ 40,
        header_content_length @ 48, header_connection @ 56, header_upgrade @ 60,
        header_transfer_encoding @ 64, header_key @ 68, header_sep @ 72, header_val @ 76,
        header_min @ 80, header_max @ 84, headers_extra_count @ 88, headers @ 96,
        header_count @ 1272, header_list @ 1280, headers_extra @ 1296,
        chunk_total_size_received @ 4096, chunk_expected_start @ 4104,
        chunk_expected_size @ 4112, chunk_processed_start @ 4120, chunk_processed_end @ 4128,
    );
    assert_eq!(size_of::<[mk_http_header; 21]>(), 1176);
    assert_eq!(size_of::<[mk_http_header; 50]>(), 2800);
    layout!(mk_http_header, size 56; type_ @ 0, key @ 8, val @ 24, _head @ 40);
}

#[test]
fn channel_stream_iov_layout() {
    // §10.9
    layout!(mk_channel, size 56;
        type_ @ 0, fd @ 4, status @ 8, event @ 16, io @ 24, streams @ 32, thread @ 48,
    );
    layout!(mk_stream, size 104;
        preserve @ 0, encoding @ 4, dynamic @ 8, bytes_total @ 16, bytes_offset @ 24,
        channel @ 32, context @ 40, cb_finished @ 48, cb_bytes_consumed @ 56,
        cb_exception @ 64, inputs @ 72, _head @ 88,
    );
    layout!(mk_stream_input, size 88;
        type_ @ 0, fd @ 4, dynamic @ 8, bytes_total @ 16, bytes_offset @ 24, buffer @ 32,
        context @ 40, cb_consumed @ 48, cb_finished @ 56, stream @ 64, _head @ 72,
    );
    layout!(mk_iov, size 40;
        iov_idx @ 0, buf_idx @ 4, size @ 8, total_len @ 16, io @ 24, buf_to_free @ 32,
    );
}

#[test]
fn mk_sched_conn_layout() {
    // Measured against v1.8.9's headers (not in monkey-abi.md): the listener a connection
    // came through, and its `Listen` line's flags.
    layout!(mk_server_listen, size 120;
        event @ 0, server_fd @ 72, network @ 80, protocol @ 88, listen @ 96, _head @ 104,
    );
    layout!(mk_config_listener, size 40; address @ 0, port @ 8, flags @ 16, _head @ 24);
    assert_eq!((MK_CAP_SOCK_PLAIN, MK_CAP_SOCK_TLS), (4, 8));
    // §10.10
    layout!(mk_sched_conn, size 200;
        event @ 0, status @ 72, properties @ 76, is_timeout_on @ 80, arrive_time @ 88,
        protocol @ 96, server_listen @ 104, net @ 112, channel @ 120, timeout_head @ 176,
        data @ 192,
    );
    layout!(mk_sched_handler, size 48;
        name @ 0, cb_read @ 8, cb_close @ 16, cb_done @ 24, cb_upgrade @ 32,
        sched_extra_size @ 40, capabilities @ 44,
    );
}

#[test]
fn other_structs_layout() {
    // §10.11
    layout!(mk_vhost_handler_param, size 32; p @ 0, _head @ 16);
    layout!(file_info, size 32;
        size @ 0, last_modification @ 8, flags_read_only @ 16, exists @ 20, is_file @ 21,
        is_link @ 22, is_directory @ 23, exec_access @ 24, read_access @ 25,
    );
    layout!(mk_plugin_network, size 64;
        read @ 0, write @ 8, writev @ 16, close @ 24, send_file @ 32, event_interest @ 40,
        buffer_size @ 48, plugin @ 56,
    );
}

#[test]
fn plugin_api_layout() {
    // §6: 88 members, 704 bytes, every member one pointer wide, in this exact order.
    layout!(plugin_api, size 704;
        socket_cork_flag @ 0, socket_reset @ 8, socket_set_tcp_fastopen @ 16,
        socket_set_tcp_nodelay @ 24, socket_set_tcp_reuseport @ 32, socket_connect @ 40,
        socket_open @ 48, socket_set_nonblocking @ 56, socket_create @ 64,
        socket_close @ 72, socket_read @ 80, socket_send_file @ 88, socket_ip_str @ 96,
        net_conn_create @ 104, config @ 112, plugins @ 120, _error @ 128,
        http_request_end @ 136, http_request_error @ 144, mem_alloc @ 152,
        mem_alloc_z @ 160, mem_realloc @ 168, mem_free @ 176, pointer_set @ 184,
        pointer_print @ 192, pointer_to_buf @ 200, str_itop @ 208, str_search @ 216,
        str_search_n @ 224, str_char_search @ 232, str_build @ 240, str_dup @ 248,
        str_copy_substr @ 256, str_split_line @ 264, str_split_free @ 272,
        file_to_buffer @ 280, file_get_info @ 288, header_prepare @ 296, header_get @ 304,
        header_add @ 312, header_set_http_status @ 320, stream_new @ 328,
        channel_new @ 336, channel_flush @ 344, channel_write @ 352,
        channel_append_stream @ 360, stream_set @ 368, iov_create @ 376,
        iov_realloc @ 384, iov_free @ 392, iov_free_marked @ 400, iov_add @ 408,
        iov_set_entry @ 416, iov_send @ 424, iov_print @ 432, plugin_load_symbol @ 440,
        ev_loop_create @ 448, ev_get_fdt @ 456, ev_add @ 464, ev_del @ 472,
        ev_timeout_create @ 480, ev_channel_create @ 488, ev_wait @ 496, ev_backend @ 504,
        mimetype_lookup @ 512, config_open @ 520, config_create @ 528, config_free @ 536,
        config_section_get @ 544, config_section_get_key @ 552, sched_loop @ 560,
        sched_remove_client @ 568, sched_get_connection @ 576, sched_event_free @ 584,
        sched_worker_info @ 592, worker_spawn @ 600, worker_rename @ 608,
        event_add @ 616, event_del @ 624, event_get @ 632, event_socket_change_mode @ 640,
        time_unix @ 648, time_to_gmt @ 656, time_human @ 664, stacktrace @ 672,
        kernel_version @ 680, kernel_features_print @ 688, handler_param_get @ 696,
    );
    assert_eq!(size_of::<plugin_api>() / size_of::<usize>(), 88);
    // Unset slots are modelled as Option<fn>: the niche keeps them pointer-sized.
    assert_eq!(size_of::<Option<unsafe extern "C" fn()>>(), 8);
}

#[test]
fn plugin_constants() {
    // §11.1, §4.1
    assert_eq!(
        [
            MK_PLUGIN_STAGE_10,
            MK_PLUGIN_STAGE_20,
            MK_PLUGIN_STAGE_30,
            MK_PLUGIN_STAGE_40
        ],
        [4, 8, 16, 32]
    );
    assert_eq!(MK_PLUGIN_STAGE_50, 64);
    assert_eq!(MK_PLUGIN_NETWORK_LAYER, 128);
    assert_eq!(MK_PLUGIN_STAGE, 256);
    assert_eq!(
        (MK_PLUGIN_STATIC, MK_PLUGIN_DYNAMIC, MK_PLUGIN_THREAD),
        (0, 1, 1)
    );
    assert_eq!(MK_PLUGIN_HEADER_EXTRA_ROWS, 18);
    assert_eq!(MK_PLUGIN_RET_NOT_ME, -1);
    assert_eq!(MK_PLUGIN_RET_CONTINUE, 100);
    assert_eq!(MK_PLUGIN_RET_END, 200);
    assert_eq!(MK_PLUGIN_RET_CLOSE_CONX, 300);
    assert_eq!((MK_TRUE, MK_FALSE, MK_ERROR), (1, 0, -1));
}

#[test]
fn event_constants() {
    // §11.2
    assert_eq!(MK_EVENT_UNMODIFIED, -1);
    assert_eq!(
        [
            MK_EVENT_NOTIFICATION,
            MK_EVENT_LISTENER,
            MK_EVENT_FIFO,
            MK_EVENT_CONNECTION,
            MK_EVENT_CUSTOM,
            MK_EVENT_THREAD
        ],
        [0, 1, 2, 3, 4, 5]
    );
    assert_eq!(
        [
            MK_EVENT_EMPTY,
            MK_EVENT_READ,
            MK_EVENT_WRITE,
            MK_EVENT_SLEEP,
            MK_EVENT_CLOSE
        ],
        [0, 1, 4, 8, 8216]
    );
    assert_eq!(MK_EVENT_CLOSE, 16 | 8 | 8192);
    assert_eq!(MK_EVENT_IDLE, 24);
    assert_eq!((MK_EVENT_LEVEL, MK_EVENT_EDGE), (256, 512));
    assert_eq!((MK_EVENT_NONE, MK_EVENT_REGISTERED), (1, 2));
    assert_eq!(MK_EVENT_QUEUE_SIZE, 256);
    assert_eq!(MK_EVENT_PRIORITY_DEFAULT, 6);
    assert_eq!(
        [
            MK_EP_SOCKET_CLOSED,
            MK_EP_SOCKET_ERROR,
            MK_EP_SOCKET_TIMEOUT,
            MK_EP_SOCKET_DONE
        ],
        [0, 1, 2, 3]
    );
}

#[test]
fn channel_and_stream_constants() {
    // §11.3
    assert_eq!(
        [
            MK_CHANNEL_OK,
            MK_CHANNEL_DONE,
            MK_CHANNEL_ERROR,
            MK_CHANNEL_FLUSH,
            MK_CHANNEL_EMPTY,
            MK_CHANNEL_BUSY,
            MK_CHANNEL_UNKNOWN
        ],
        [0, 1, 2, 4, 8, 16, 32]
    );
    assert_eq!(MK_CHANNEL_SOCKET, 0);
    assert_eq!(
        [
            MK_STREAM_RAW,
            MK_STREAM_IOV,
            MK_STREAM_FILE,
            MK_STREAM_SOCKET
        ],
        [0, 1, 2, 3]
    );
}

#[test]
fn http_constants() {
    // §11.4, §5.1, §5.3
    assert_eq!(
        [
            MK_HTTP_PROTOCOL_UNKNOWN,
            MK_HTTP_PROTOCOL_09,
            MK_HTTP_PROTOCOL_10,
            MK_HTTP_PROTOCOL_11
        ],
        [-1, 9, 10, 11]
    );
    assert_eq!(
        [
            MK_METHOD_GET,
            MK_METHOD_POST,
            MK_METHOD_HEAD,
            MK_METHOD_PUT,
            MK_METHOD_DELETE,
            MK_METHOD_OPTIONS,
            MK_METHOD_UNKNOWN
        ],
        [0, 1, 2, 3, 4, 5, 7]
    );
    let headers = [
        MK_HEADER_ACCEPT,
        MK_HEADER_ACCEPT_CHARSET,
        MK_HEADER_ACCEPT_ENCODING,
        MK_HEADER_ACCEPT_LANGUAGE,
        MK_HEADER_AUTHORIZATION,
        MK_HEADER_CACHE_CONTROL,
        MK_HEADER_COOKIE,
        MK_HEADER_CONNECTION,
        MK_HEADER_CONTENT_LENGTH,
        MK_HEADER_CONTENT_RANGE,
        MK_HEADER_CONTENT_TYPE,
        MK_HEADER_HOST,
        MK_HEADER_HTTP2_SETTINGS,
        MK_HEADER_IF_MODIFIED_SINCE,
        MK_HEADER_LAST_MODIFIED,
        MK_HEADER_LAST_MODIFIED_SINCE,
        MK_HEADER_RANGE,
        MK_HEADER_REFERER,
        MK_HEADER_TRANSFER_ENCODING,
        MK_HEADER_UPGRADE,
        MK_HEADER_USER_AGENT,
        MK_HEADER_SIZEOF,
        MK_HEADER_OTHER,
    ];
    let expected: Vec<i32> = (0..=22).collect();
    assert_eq!(headers.to_vec(), expected);
    assert_eq!(
        [
            MK_HTTP_PARSER_CONN_UNKNOWN,
            MK_HTTP_PARSER_CONN_EMPTY,
            MK_HTTP_PARSER_CONN_KA,
            MK_HTTP_PARSER_CONN_CLOSE,
            MK_HTTP_PARSER_CONN_UPGRADE,
            MK_HTTP_PARSER_CONN_HTTP2_SE
        ],
        [-1, 0, 1, 2, 4, 8]
    );
    assert_eq!(
        [
            MK_HTTP_PARSER_TRANSFER_ENCODING_NONE,
            MK_HTTP_PARSER_TRANSFER_ENCODING_CHUNKED,
            MK_HTTP_PARSER_TRANSFER_ENCODING_GZIP,
            MK_HTTP_PARSER_TRANSFER_ENCODING_COMPRESS,
            MK_HTTP_PARSER_TRANSFER_ENCODING_DEFLATE,
            MK_HTTP_PARSER_TRANSFER_ENCODING_IDENTITY
        ],
        [0, 1, 2, 4, 8, 16]
    );
    assert_eq!(
        (MK_REQUEST_STATUS_INCOMPLETE, MK_REQUEST_STATUS_COMPLETED),
        (-1, 0)
    );
    assert_eq!((SH_NOCGI, SH_CGI), (0, 1));
    assert_eq!(MK_HEADER_TE_TYPE_CHUNKED, 0);
    assert_eq!(MK_HEADER_BREAKLINE, 1);
    assert_eq!(MK_CUSTOM_STATUS, 7);
    assert_eq!(MK_REQUEST_CHUNK, 4096);
    assert_eq!(MK_PATH_BASE, 128);
    assert_eq!(MK_HEADER_IOV, 32);
    assert_eq!(MK_HEADER_EXTRA_SIZE, 50);
}

#[test]
fn log_config_file_constants() {
    // §11.5
    assert_eq!(
        [MK_INFO, MK_ERR, MK_WARN, MK_BUG],
        [0x1000, 0x1001, 0x1002, 0x1003]
    );
    assert_eq!(
        [MK_RCONF_STR, MK_RCONF_NUM, MK_RCONF_BOOL, MK_RCONF_LIST],
        [0, 1, 2, 3]
    );
    assert_eq!([MK_FILE_EXISTS, MK_FILE_READ, MK_FILE_EXEC], [1, 2, 4]);
}

#[test]
fn constant_types_match_their_fields() {
    // Masks go into `mk_event.mask` / ev_add's uint32_t, hooks into `mk_plugin.hooks`,
    // status values are compared with `mk_event.status`, stage returns are C ints.
    let ev = mk_event {
        mask: MK_EVENT_READ | MK_EVENT_WRITE,
        status: MK_EVENT_REGISTERED,
        type_: MK_EVENT_CUSTOM | MK_EVENT_IDLE,
        ..Default::default()
    };
    assert_eq!(ev.mask, 5);
    let plugin = mk_plugin {
        hooks: MK_PLUGIN_STAGE,
        ..Default::default()
    };
    assert_eq!(plugin.hooks, 256);
    let ret: std::os::raw::c_int = MK_PLUGIN_RET_CONTINUE;
    assert_eq!(ret, 100);
}
