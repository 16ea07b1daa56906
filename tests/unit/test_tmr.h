/**
 * @file test_tmr.h  What the files of the timer wheel test share
 *
 * test_tmr.c has the harness: the checks, the random numbers, the test
 * clock, the probes (timers under test that log their firing) and main,
 * which runs the tests declared here in this order.
 */

/* ------------------------------------------------------------- checks */

void check(bool ok, const char *what, const char *file, int line);

#define CHECK(c) check((c), #c, __FILE__, __LINE__)

/* xorshift64*, seeded by TMR_SEED: the same seed, the same run */
uint64_t rnd(void);
uint64_t rnd_below(uint64_t n);


/* --------------------------------------------------------- test clock */

typedef int (clock_gettime_f)(clockid_t id, struct timespec *ts);

extern clock_gettime_f *clk_real;  /* the C library's clock_gettime   */
extern uint64_t clk_ms;            /* the frozen clock [ms]            */

uint64_t real_ms(void);


/* ------------------------------------------------------------- probes */

struct probe;
typedef void (probe_act_h)(struct probe *p);

/** A timer under test and what happened to it */
struct probe {
	struct tmr tmr;
	uint32_t id;
	uint64_t seq;           /* start order of the last start         */
	uint64_t jfs;           /* expiry of the last start              */
	unsigned runs;
	bool running_in_h;      /* tmr_isrunning() inside its handler    */
	uint64_t fired_at;      /* tmr_jiffies() in the handler          */
	uint64_t poll_no;       /* poll_count when it fired              */
	probe_act_h *act;       /* optional action in the handler        */
	void *ctx;              /* borrowed; for act                     */
	size_t hidx;            /* reference heap index, HEAP_NONE = out */
	bool deferred;          /* reference: started for the next pass  */
};

extern struct probe **flog;     /* probes in firing order (main thread) */
extern size_t flog_n;

void flog_reset(void);
void probe_h(void *arg);
void probe_start(struct probe *p, uint64_t delay);
bool probe_start_at(struct probe *p, uint64_t tick);
void poll_once(void);
uint64_t wheel_live(void);

typedef bool (done_h)(void *arg);

void drive(uint64_t ms, done_h *done, void *arg);
bool done_nothing_live(void *arg);
bool done_flog_n(void *arg);


/* -------------------------------------------------------------- tests */

/* test_tmr_wheel.c: libre's timer semantics, real time */
void test_jiffies(void);
void test_start_cancel(void);
void test_zero_delay(void);
void test_equal_expiry(void);
void test_handler_cancel(void);
void test_self_rearm(void);
void test_nested_poll(void);
void test_next_timeout(void);
void test_long_delays(void);

/* test_tmr_load.c: many timers, threads, real time */
void test_random_realtime(void);
void test_threads(void);

/* test_tmr_libre.c: re_main and SIP transactions on the wheel */
void test_symbols(void);
void test_re_main(void);
void test_sip_retransmit(void);

/* test_tmr_frozen.c: the frozen clock */
void test_frozen_exact(void);
void test_frozen_min(void);
void test_frozen_equal(void);
void test_frozen_cascade(void);
void test_frozen_model(void);
