%% bench_ring — R processes in a ring pass one token M hops. The process
%% that receives it at 0 reports its index, which main checks. Only the
%% token's trip is timed.
-module(bench_ring).
-export([main/1]).

main(Args) ->
    R = bench_common:arg(Args, 1, 1000),
    M = bench_common:arg(Args, 2, 5000000),
    Main = self(),
    Nodes = list_to_tuple([spawn(fun() -> node_wait() end) || _ <- lists:seq(1, R)]),
    [element(I + 1, Nodes) ! {next, element((I + 1) rem R + 1, Nodes), Main, I}
     || I <- lists:seq(0, R - 1)],
    [receive linked -> ok end || _ <- lists:seq(1, R)],
    T0 = bench_common:now_s(),
    element(1, Nodes) ! {token, M},
    Last = receive {done, L} -> L
           after 600000 -> bench_common:fail("ring: timed out", [])
           end,
    Secs = bench_common:now_s() - T0,
    Last =:= M rem R orelse bench_common:fail("ring: token ended at ~p", [Last]),
    bench_common:result("ring", M, Secs, "hops_per_s", M / Secs,
                        "r=" ++ integer_to_list(R)).

node_wait() ->
    receive
        {next, Next, Main, Index} ->
            Main ! linked,
            node_loop(Next, Main, Index)
    end.

node_loop(Next, Main, Index) ->
    receive
        {token, 0} -> Main ! {done, Index}, node_loop(Next, Main, Index);
        {token, K} -> Next ! {token, K - 1}, node_loop(Next, Main, Index)
    end.
