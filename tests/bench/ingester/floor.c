/* floor.c: bench-floor-server PORT THREADS: answers every request 200
 * {"received":true} after reading the body; the ceiling for the ingester's
 * benchmark (same libmicrohttpd mode: internal epoll thread pool). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "ledgerline/shutdown.h"

static enum MHD_Result floor_handler(void *cls, struct MHD_Connection *c, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    static int marker;
    if (*con_cls == NULL) {
        *con_cls = &marker;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    static const char body[] = "{\"received\":true}";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench-floor-server PORT THREADS\n");
        return 2;
    }
    int port = atoi(argv[1]), threads = atoi(argv[2]);
    if (port <= 0 || port > 65535 || threads <= 0 || threads > 1024) {
        fprintf(stderr, "bench-floor-server: bad PORT or THREADS\n");
        return 2;
    }
    shutdown_install();
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t)port, NULL, NULL, floor_handler,
        NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_CONNECTION_LIMIT, 1024u,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "bench-floor-server: cannot listen on %d\n", port);
        return 1;
    }
    while (shutdown_sleep_ms(500)) {
    }
    MHD_stop_daemon(d);
    return 0;
}
