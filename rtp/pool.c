/**
 * @file pool.c  Port pool of the media relay
 *
 * RTP/RTCP port pairs (even, odd) of the configured range.  Freed pairs go
 * to the back of a ring, so a port is reused late and late packets of an
 * ended call do not reach the next one.  With media_pool_set_random() a
 * pair is picked at random among the older half of the free ones, so that
 * the port of the next call cannot be guessed from the last one's.  Main
 * thread only.
 */

#include <string.h>
#include "relay_int.h"


struct media_pool {
	uint16_t *ring;      /**< owned: free RTP ports                    */
	uint8_t *used;       /**< owned: one flag per pair                 */
	uint32_t size;       /**< pairs in the range                       */
	uint32_t head;       /**< next to give                             */
	uint32_t count;      /**< free pairs in the ring                   */
	uint16_t min, max;
	bool random;         /**< pick among the older half at random      */
};


static void pool_destructor(void *arg)
{
	struct media_pool *p = arg;

	mem_deref(p->ring);
	mem_deref(p->used);
}


/**
 * Allocate a pool of the pairs in [min, max]
 *
 * @return 0, EINVAL (min odd, max even, min >= max), ENOMEM
 */
int media_pool_alloc(struct media_pool **pp, uint16_t min, uint16_t max)
{
	struct media_pool *p;
	uint32_t i;

	if (!pp || (min & 1) || !(max & 1) || min >= max)
		return EINVAL;

	p = mem_zalloc(sizeof(*p), pool_destructor);
	if (!p)
		return ENOMEM;

	p->min = min;
	p->max = max;
	p->size = ((uint32_t)max - min + 1) / 2;
	p->ring = mem_alloc(p->size * sizeof(*p->ring), NULL);
	p->used = mem_zalloc(p->size, NULL);
	if (!p->ring || !p->used) {
		mem_deref(p);
		return ENOMEM;
	}

	for (i = 0; i < p->size; i++)
		p->ring[i] = (uint16_t)(min + 2 * i);

	p->count = p->size;
	*pp = p;

	return 0;
}


/** Take a pair; *portp is its even RTP port.  ENOSPC when none is left */
int media_pool_get(struct media_pool *p, uint16_t *portp)
{
	uint16_t port;

	if (!p || !portp)
		return EINVAL;

	if (!p->count)
		return ENOSPC;

	if (p->random && p->count > 1) {
		uint32_t i = (p->head + rand_u32() % ((p->count + 1) / 2)) %
			p->size;

		port = p->ring[i];
		p->ring[i] = p->ring[p->head];
		p->ring[p->head] = port;
	}

	port = p->ring[p->head];
	p->head = (p->head + 1) % p->size;
	--p->count;
	p->used[(port - p->min) / 2] = 1;
	*portp = port;

	return 0;
}


/** Give a pair back.  EINVAL: not a pair of this pool; EALREADY: free */
int media_pool_put(struct media_pool *p, uint16_t port)
{
	uint32_t i;

	if (!p || port < p->min || port > p->max || (port & 1))
		return EINVAL;

	i = (port - p->min) / 2;
	if (!p->used[i])
		return EALREADY;

	p->used[i] = 0;
	p->ring[(p->head + p->count) % p->size] = port;
	++p->count;

	return 0;
}


/** Pick pairs at random (on) or in the ring's order (off, the default) */
void media_pool_set_random(struct media_pool *p, bool on)
{
	if (p)
		p->random = on;
}


uint32_t media_pool_free(const struct media_pool *p)
{
	return p ? p->count : 0;
}


uint32_t media_pool_size(const struct media_pool *p)
{
	return p ? p->size : 0;
}
