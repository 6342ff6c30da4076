import { type Linked, LinkedList } from "../../mvcc/linked_list.ts";
import { assertEquals, assertThrows } from "./helpers.ts";

class Item implements Linked {
  prev: Linked | undefined = undefined;
  next: Linked | undefined = undefined;
  list: LinkedList<Linked> | undefined = undefined;
  constructor(readonly n: number) {}
}

function names(list: LinkedList<Item>): number[] {
  const out: number[] = [];
  list.forEach((x) => out.push(x.n));
  return out;
}

Deno.test("linked list: members in push order; removal anywhere; one list at a time", () => {
  const a = new LinkedList<Item>(), b = new LinkedList<Item>();
  const items = [0, 1, 2, 3, 4].map((n) => new Item(n));
  items.forEach((x) => a.push(x));
  assertEquals(names(a), [0, 1, 2, 3, 4]);
  assertEquals(a.size, 5);
  assertThrows(() => b.push(items[2]), (e) => String(e).includes("already on a list"));
  assertEquals(b.delete(items[2]), false);
  // head, middle and tail
  for (const i of [0, 2, 4]) assertEquals(a.delete(items[i]), true);
  assertEquals(a.delete(items[2]), false);
  assertEquals(names(a), [1, 3]);
  assertEquals(a.head, items[1]);
  b.push(items[2]);
  b.push(items[0]);
  assertEquals(names(b), [2, 0]);
  // moving every member while walking: each is removed as it is visited
  a.forEach((x) => {
    a.delete(x);
    b.push(x);
  });
  assertEquals([a.size, a.head], [0, undefined]);
  assertEquals(names(b), [2, 0, 1, 3]);
  // a list emptied and refilled keeps its order right (the tail was reset)
  b.forEach((x) => b.delete(x));
  b.push(items[4]);
  b.push(items[1]);
  assertEquals(names(b), [4, 1]);
});
