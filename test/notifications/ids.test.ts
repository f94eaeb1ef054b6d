import t from 'tap'
import { newNotificationId, numberShard, shardFor, shardOfId } from '../../src/notifications/ids.js'

t.test('numberShard is shardFor, whatever the shard count and however many numbers were seen', async t => {
  for (const shards of [16, 3, 16, 1]) {
    for (let i = 0; i < 12_000; i += 7) {
      const phone = `+9901${String(i).padStart(6, '0')}`
      if (numberShard(phone, shards) !== shardFor(phone, shards)) return t.fail(`${phone} with ${shards} shards`)
    }
  }
  t.pass('12,000 numbers with 16, 3, 16 again and 1 shard')
})

t.test('a notification id carries its shard', async t => {
  for (const shard of [0, 7, 15]) t.equal(shardOfId(newNotificationId(shard), 16), shard)
  t.equal(shardOfId(newNotificationId(15), 8), undefined, 'a shard this deployment does not have')
  t.equal(shardOfId('ntf_07_nothex', 16), undefined)
})
